package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/helper"
)

// A nscheck without the embedded helper (go install) serves a helper
// request from internal/helpermode's init: the host's heavy packages
// (Ginkgo, procfs' regexps, the runner) are never initialised in a helper.
func TestHelperServedBeforeHostInits(t *testing.T) {
	req, reqW, err := os.Pipe() // the request: EOF at once
	if err != nil {
		t.Fatal(err)
	}
	reqW.Close()
	repR, rep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// argv[1] names the action, as helper.Command writes it.
	cmd := exec.Command(os.Args[0], "prop.ns-id")
	cmd.Env = append(os.Environ(), helper.EnvVar+"=1", "GODEBUG=inittrace=1")
	cmd.ExtraFiles = []*os.File{rep, req} // fd 3 reply, fd 4 request
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	rep.Close()
	req.Close()
	defer repR.Close()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	trace := stderr.String()
	if !strings.Contains(trace, "init github.com/nscheck/nscheck/suites/uts @") {
		t.Fatalf("no init trace of the suites:\n%.2000s", trace)
	}
	for _, pkg := range []string{
		"github.com/onsi/ginkgo/v2",
		"github.com/prometheus/procfs",
		"github.com/nscheck/nscheck/internal/runner",
		"github.com/Masterminds/semver/v3",
	} {
		if strings.Contains(trace, "init "+pkg+" @") {
			t.Errorf("the helper initialised %s before it served the request", pkg)
		}
	}
}
