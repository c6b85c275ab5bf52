package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// module is the import path every package of this repository starts with.
const module = "github.com/netcore-connect/netcore-connect/"

// TestProductDoesNotImportTestTooling checks the layout's promise: test
// tooling lives under internal/testing/, no product package (cmd, plugins,
// the rest of internal) depends on it or on the testing package, and the
// bench binaries, which may use the tooling, stay free of testing: what
// testing brings (its flags, its init) has no place in a measured process.
func TestProductDoesNotImportTestTooling(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := strings.TrimPrefix(fields[0], module), fields[1:]
		if strings.HasPrefix(pkg, "internal/testing/") || pkg == "tests" {
			continue
		}
		bench := strings.HasPrefix(pkg, "bench/")
		for _, dep := range deps {
			if dep == "testing" {
				t.Errorf("%s depends on the testing package", pkg)
			}
			if !bench && strings.HasPrefix(dep, module+"internal/testing/") {
				t.Errorf("product package %s depends on test tooling %s", pkg, dep)
			}
		}
		checked++
	}
	// The premise: the product and the bench binary were among those looked at.
	for _, want := range []string{"cmd/netcore-connect", "bench/cmd/netcore-bench"} {
		if !strings.Contains(string(out), module+want+" ") {
			t.Errorf("go list did not list %s", want)
		}
	}
	if checked < 10 {
		t.Errorf("only %d packages checked", checked)
	}
}
