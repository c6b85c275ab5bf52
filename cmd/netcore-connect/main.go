// Command netcore-connect is Benthos with the plugins that take Netcore CE
// journey webhooks to Meiro Events. Every Benthos subcommand works (run,
// lint, test, echo, list, streams, blobl); run without a config runs the
// embedded default pipeline, config/netcore-to-meiro.yaml.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/netcore-connect/netcore-connect/config"
	"github.com/netcore-connect/netcore-connect/internal/runstatus"
	_ "github.com/netcore-connect/netcore-connect/plugins/archive"
	_ "github.com/netcore-connect/netcore-connect/plugins/contract"
	_ "github.com/netcore-connect/netcore-connect/plugins/deadletter"
	_ "github.com/netcore-connect/netcore-connect/plugins/diskqueue"
	_ "github.com/netcore-connect/netcore-connect/plugins/kafka"
	_ "github.com/netcore-connect/netcore-connect/plugins/meiro"
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
	os.Exit(run())
}

// run is main with deferred clean-ups that run before the process exits.
func run() int {
	keepConnectionsAlive()
	tuneGC()
	opts := []service.CLIOptFunc{
		service.CLIOptSetBinaryName("netcore-connect"),
		service.CLIOptSetProductName("netcore-connect"),
		service.CLIOptSetVersion(buildVersion(), dateBuilt),
		// The help texts that link here (streams mode, Bloblang, templates)
		// name guides of the engine, which its documentation holds.
		service.CLIOptSetDocumentationURL("https://docs.redpanda.com/redpanda-connect"),
		service.CLIOptOnLoggerInit(logEmbeddedDefault),
		service.CLIOptSetEnvVarLookup(lookupNonEmpty),
		// Called by run and streams after -e .env files are applied and
		// before the config is read: a bad variable stops the start there.
		service.CLIOptCustomRunFlags(nil, func(c *cli.Context) error {
			return errors.Join(checkEnvironment(lookupEnv), checkNotAStreamsRoot(c))
		}),
		service.CLIOptSetMainSchemaFrom(schemaWithAdminOnLoopback),
		service.CLIOptAddCommand(queueCommand()),
		service.CLIOptAddCommand(quarantineCommand()),
		service.CLIOptAddCommand(catalogCommand()),
		service.CLIOptAddCommand(journalCommand()),
	}
	dir, path, err := writeDefaultConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netcore-connect: the embedded default config is unavailable: %v\n", err)
		// Without it, no default is searched at all: Benthos's own default
		// paths are places another user might plant a pipeline.
		opts = append(opts, service.CLIOptSetDefaultConfigPaths())
	} else {
		defer os.RemoveAll(dir)
		opts = append(opts, service.CLIOptSetDefaultConfigPaths(path))
	}
	code, err := service.RunCLIToCode(context.Background(), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return exitStatus(code, runstatus.Reports(), os.Stderr)
}

// exitStatus is the process's exit status once Benthos returned code.
// Whatever the run left undone is printed whenever there is any, also when
// Benthos itself failed (its non-zero code is kept: it says more); a run
// Benthos ended cleanly with work left undone exits with exitIncomplete.
func exitStatus(code int, reports []string, stderr io.Writer) int {
	if len(reports) == 0 {
		return code
	}
	fmt.Fprintf(stderr, "netcore-connect: the run ended without doing all it was asked:\n  %s\n", strings.Join(reports, "\n  "))
	if code == 0 {
		return exitIncomplete
	}
	return code
}

// exitIncomplete is the exit status of a run that ended cleanly but left
// part of its work undone (runstatus): an archive replay that could not
// read all of its range, or was stopped before its end. Benthos itself
// exits 1 when a config cannot start.
const exitIncomplete = 3

// defaultAdminAddress is where the admin server listens unless a config sets
// http.address or NETCORE_ADMIN_ADDRESS names another place. Benthos's own
// default, 0.0.0.0:4195, shows /metrics, /endpoints, /stats and /version to
// the whole network; the Docker image sets NETCORE_ADMIN_ADDRESS=0.0.0.0:4195
// explicitly, for scraping from outside the container.
const defaultAdminAddress = "127.0.0.1:4195"

// schemaWithAdminOnLoopback is Benthos's config schema with the admin
// server's default address changed, for every config, shipped or not. It is
// called when a config is read, after any -e .env file is applied.
func schemaWithAdminOnLoopback() *service.ConfigSchema {
	schema := service.GlobalEnvironment().FullConfigSchema(buildVersion(), dateBuilt)
	address := defaultAdminAddress
	if v, ok := lookupNonEmpty(context.Background(), "NETCORE_ADMIN_ADDRESS"); ok {
		address = v
	}
	schema.SetFieldDefault(address, "http", "address")
	return schema
}

// keepConnectionsAlive lets core's http_client outputs, in operators' own
// configs, reuse their connections. (Meiro Events is sent to by meiro_http,
// whose fasthttp pool keeps a connection per request in flight; this does
// not touch it.) http_client sends through http.DefaultTransport (unless it
// sets up TLS or a proxy), which keeps only 2 idle connections per host:
// with 64 requests in flight almost every request opened a new connection
// (measured when Meiro Events was sent to by http_client: 31,688
// connections for 37,030 events). Keep as many idle connections as requests
// can be in flight.
func keepConnectionsAlive() {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = 256
		t.MaxIdleConns = 1024
	}
}

// Garbage collection defaults, each kept when its Go variable (GOGC,
// GOMEMLIMIT) is set. Every event makes short-lived garbage and the live heap
// is small (8-10 MiB under load: the backlog lives on disk), so collecting at
// 4 times the live heap (GOGC 300) rather than twice it saves CPU for posts
// and deliveries (measured at 5 times: about 10% more events a second each
// way); at 5 the peak RSS of netcore-bench goals' burst and steady passed
// the 120 MB it is held to, at 4 it was 10 MiB lower for the same CPU.
//
// The soft limit keeps the heap from growing to 4 times a live heap that
// big posts make large: the webhook's budget (max_body_bytes_in_flight,
// 256 MiB) and the queue's read path (read_memory_bytes, 32 MiB) bound
// what is live, the limit bounds the garbage on top. 144 MiB, measured
// against 160 MiB and 384 MiB (tests/memory_*_test.go, GOMEMLIMIT set in
// the environment of go test): a restart on a full queue of 9.6 MB posts
// peaked at 244-246 MiB of RSS (258-277 at 160, the heap at its limit plus
// the binary and the queue file's mapped pages), 100 posts of 9.7 MB at
// once at 255 MiB (269-275 at 160, 470 at 384), for the same CPU (12.8,
// 13.3 and 12.3 CPU-s; 179, 124 and 41 collections). A lower limit only
// makes the collector run more often while the budgets are full.
const (
	defaultGCPercent   = 300
	defaultMemoryLimit = 144 << 20
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

// writeDefaultConfig writes the embedded default pipeline where Benthos can
// read it when no config is named (Benthos reads configs from files only).
// The directory is made for this process alone (mode 0700, a fresh random
// name, created or failing, never reused) and the file is created in it
// exclusively: no other user of the host can plant a pipeline that this
// binary would run. The caller removes dir on exit.
func writeDefaultConfig() (dir, path string, err error) {
	dir, err = os.MkdirTemp("", "netcore-connect-")
	if err != nil {
		return "", "", fmt.Errorf("making a private directory for the default config: %w", err)
	}
	path = filepath.Join(dir, "netcore-to-meiro.yaml")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.Write(config.Default)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("writing the default config to %s: %w", path, err)
	}
	return dir, path, nil
}
