package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryREADMEVariableIsChecked keeps the README's Environment table and
// the checks made at start in step: a variable documented but not checked
// would start silently with a bad value.
func TestEveryREADMEVariableIsChecked(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "## Environment")
	if start < 0 {
		t.Fatal("README.md has no Environment section")
	}
	section = section[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(cells[1], -1) {
			documented = append(documented, m[1])
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %v in the README's Environment table", documented)
	}
	var checked []string
	for _, s := range settings {
		checked = append(checked, s.name)
	}
	for _, name := range documented {
		if !slices.Contains(checked, name) {
			t.Errorf("%s is in the README's Environment table but not checked at start", name)
		}
	}
	for _, name := range checked {
		if !slices.Contains(documented, name) {
			t.Errorf("%s is checked at start but not in the README's Environment table", name)
		}
	}
}

func TestCheckEnvironmentNamesEveryBadVariable(t *testing.T) {
	env := map[string]string{
		"MEIRO_EVENTS_URL":  "https://meiro.example.com/collect",
		"MEIRO_BATCH_SIZE":  "abc",
		"NETCORE_LOG_LEVEL": "debug",
		"NATS_URL":          "nats://n1:4222,http://n2:4222",
		"GOMEMLIMIT":        "160MB",
		"NETCORE_PATH":      "",
	}
	err := checkEnvironment(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("three bad variables passed")
	}
	for _, want := range []string{`MEIRO_BATCH_SIZE="abc"`, `NATS_URL="nats://n1:4222,http://n2:4222"`, `GOMEMLIMIT="160MB"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
	for _, good := range []string{"MEIRO_EVENTS_URL", "NETCORE_LOG_LEVEL", "NETCORE_PATH"} {
		if strings.Contains(err.Error(), good+"=") {
			t.Errorf("the error names %s, which is good or unset:\n%v", good, err)
		}
	}
}

// MEIRO_TIMEOUT is a Go duration with its unit, within bounds: a
// timeout under a second fails healthy requests under load (each one then
// sent again), one over 45 s leaves the scale-out deliverer's event too
// little of its ack_wait (60 s, from its delivery by NATS) to wait for a
// request slot before its own request.
func TestMeiroTimeoutIsADurationWithinBounds(t *testing.T) {
	for v, ok := range map[string]bool{"1s": true, "10s": true, "45s": true, "46s": false, "1m": false, "1m30s": false,
		"10": false, "500ms": false, "2m": false, "-10s": false, "ten seconds": false} {
		err := checkEnvironment(func(k string) (string, bool) { return v, k == "MEIRO_TIMEOUT" })
		if ok && err != nil {
			t.Errorf("MEIRO_TIMEOUT=%s refused: %v", v, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), `MEIRO_TIMEOUT="`+v+`"`) || !strings.Contains(err.Error(), "from 1s to 45s")) {
			t.Errorf("MEIRO_TIMEOUT=%s: %v, want it refused, named, with what it takes", v, err)
		}
	}
}

func TestCheckEnvironmentHidesSecrets(t *testing.T) {
	env := map[string]string{
		"POSTGRES_DSN":     "postgres://netcore:s3cret@db:5432/events?sslmode=bogus",
		"MEIRO_EVENTS_URL": "ftp://user:s3cret@meiro.example.com/collect",
	}
	err := checkEnvironment(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("two bad variables passed")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows a password:\n%v", err)
	}
	for _, want := range []string{"POSTGRES_DSN=", "MEIRO_EVENTS_URL=", "meiro.example.com"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

// NETCORE_WEBHOOK_TOKEN is a secret whole: a bad one is named, never shown,
// and a good one (or two, during a rotation) passes.
func TestCheckEnvironmentNeverShowsTheWebhookToken(t *testing.T) {
	for _, bad := range []string{"short-s3cret", "s3cret has spaces in it", "s3cret-token-aaaaaaaa,s3cret-token-bbbbbbbb,s3cret-token-cccccccc", "s3cret-token-aaaaaaaa,"} {
		err := checkEnvironment(func(k string) (string, bool) { return bad, k == "NETCORE_WEBHOOK_TOKEN" })
		if err == nil || !strings.Contains(err.Error(), "NETCORE_WEBHOOK_TOKEN=") {
			t.Errorf("a bad token passed, or is not named: %v", err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the token:\n%v", err)
		}
	}
	for _, good := range []string{"0123456789abcdef0123", "old-token-0123456789, new-token-0123456789"} {
		if err := checkEnvironment(func(k string) (string, bool) { return good, k == "NETCORE_WEBHOOK_TOKEN" }); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for value, ok := range map[string]bool{"X-Netcore-Token": true, "X-Token 2": false, "X-Token:": false} {
		err := checkEnvironment(func(k string) (string, bool) { return value, k == "NETCORE_WEBHOOK_TOKEN_HEADER" })
		if (err == nil) != ok {
			t.Errorf("NETCORE_WEBHOOK_TOKEN_HEADER=%q: %v", value, err)
		}
	}
}
