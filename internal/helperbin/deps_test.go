package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Every helper exec pays the initialisers and page faults of what this
// binary links: what only the host needs must stay out. Each entry names
// why it went out, so that a new import that brings it back fails here.
var keptOut = []struct{ pkg, why string }{
	{"net", "net's and net/netip's initialisers (internal/rawsock instead)"},
	{"vendor/golang.org/x/net/", "net's DNS code"},
	{"compress/", "gzip, for kernel configs: the diagnosis, host side (internal/nsprobe holds the probes)"},
	{"hash/crc32", "gzip's checksum tables, built at init"},
	{"regexp", "patterns compiled at init"},
	{"encoding/xml", "JUnit, host side"},
	{"crypto/", "random names use math/rand/v2"},
	{"github.com/prometheus/procfs", "22 regexps compiled at init (internal/procfile instead)"},
	{"github.com/onsi/", "Ginkgo and Gomega: the specs run on the host"},
	{"github.com/nscheck/nscheck/internal/diag", "the diagnosis, host side"},
	{"github.com/nscheck/nscheck/internal/kconfig", "kernel config parsing, host side"},
	{"github.com/nscheck/nscheck/internal/report", "reports, host side"},
}

func TestLeanDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the helper's dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		for _, k := range keptOut {
			// An entry is that package and everything below it.
			if root := strings.TrimSuffix(k.pkg, "/"); dep == root || strings.HasPrefix(dep, root+"/") {
				t.Errorf("the lean helper links %s: every helper exec would pay for %s", dep, k.why)
			}
		}
	}
}
