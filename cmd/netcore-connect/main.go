// Command netcore-connect is Benthos with the plugins that take Netcore CE
// journey webhooks to Meiro Events. Every Benthos subcommand works (run,
// lint, test, echo, list, streams, blobl); run without a config runs the
// embedded default pipeline, config/netcore-to-meiro.yaml.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/netcore-connect/netcore-connect/config"
	_ "github.com/netcore-connect/netcore-connect/plugins/deadletter"
	_ "github.com/netcore-connect/netcore-connect/plugins/diskqueue"
	_ "github.com/netcore-connect/netcore-connect/plugins/natsjs"
	_ "github.com/netcore-connect/netcore-connect/plugins/netcore"
	_ "github.com/netcore-connect/netcore-connect/plugins/postgres"
	_ "github.com/netcore-connect/netcore-connect/plugins/prometheus"
)

// Set at build time: go build -ldflags "-X main.version=1.2.3 -X main.dateBuilt=...".
var (
	version   = ""
	dateBuilt = "unknown"
)

func main() {
	keepConnectionsAlive()
	tuneGC()
	opts := []service.CLIOptFunc{
		service.CLIOptSetBinaryName("netcore-connect"),
		service.CLIOptSetProductName("netcore-connect"),
		service.CLIOptSetVersion(buildVersion(), dateBuilt),
		service.CLIOptSetDocumentationURL("https://github.com/netcore-connect/netcore-connect"),
		service.CLIOptSetEnvVarLookup(lookupNonEmpty),
	}
	if path, err := defaultConfigFile(); err == nil {
		opts = append(opts, service.CLIOptSetDefaultConfigPaths(path))
	} else {
		fmt.Fprintf(os.Stderr, "netcore-connect: the embedded default config is unavailable: %v\n", err)
	}
	service.RunCLI(context.Background(), opts...)
}

// keepConnectionsAlive lets HTTP outputs reuse their connections. Core's
// http_client sends through http.DefaultTransport (unless it sets up TLS or
// a proxy), which keeps only 2 idle connections per host: with 64 requests
// in flight to Meiro Events almost every request opened a new connection
// (measured: 31,688 connections for 37,030 events). Keep as many idle
// connections as requests can be in flight.
func keepConnectionsAlive() {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = 256
		t.MaxIdleConns = 1024
	}
}

// Garbage collection defaults, each kept when its Go variable (GOGC,
// GOMEMLIMIT) is set. Every event makes short-lived garbage and the live heap
// is small (the backlog lives on disk), so collecting at 5 times the live
// heap rather than twice it saves CPU for posts and deliveries (measured
// here: about 10% more events a second each way); the soft limit keeps the
// larger heap from growing past it when bursts of big posts are in flight.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 160 << 20
)

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// lookupNonEmpty treats an empty environment variable as unset, so that a
// required one such as MEIRO_EVENTS_URL="" stops the start with a clear error
// instead of running with an empty value.
func lookupNonEmpty(_ context.Context, key string) (string, bool) {
	v, ok := os.LookupEnv(key)
	return v, ok && v != ""
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// defaultConfigFile writes the embedded default pipeline where Benthos can
// read it when no config is named (Benthos reads configs from files only).
// The name carries a hash of the content, so it is written once per version.
func defaultConfigFile() (string, error) {
	dir := filepath.Join(os.TempDir(), "netcore-connect")
	path := filepath.Join(dir, "netcore-to-meiro-"+config.DefaultHash()+".yaml")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "default-*.yaml")
	if err != nil {
		return "", fmt.Errorf("writing default config: %w", err)
	}
	_, err = tmp.Write(config.Default)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Rename is atomic: a concurrent start never reads half a file.
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("writing default config: %w", err)
	}
	return path, nil
}
