//go:build !helperbin

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/initorder"
	"github.com/nscheck/nscheck/internal/report"
)

// helperDeps is what `make generate` writes: `go list -deps` of
// internal/helpermode. Its other modules' packages must match exactly;
// the standard library's only under the Go that listed them (under
// another, every standard package initialises first anyway).
func TestHelperDepsUpToDate(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the helper's dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/nscheck/nscheck/internal/helpermode").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps, err := initorder.ParseDeps(helperDeps)
	if err != nil {
		t.Fatal(err)
	}
	sameGo := deps.GoVersion == runtime.Version()
	keep := func(pkgs []string) (kept []string) {
		for _, p := range pkgs {
			if sameGo || !initorder.Std(p) {
				kept = append(kept, p)
			}
		}
		return kept
	}
	if got, want := strings.Join(keep(deps.Packages), "\n"), strings.Join(keep(strings.Fields(string(out))), "\n"); got != want {
		t.Errorf("cmd/nscheck/helperdeps.txt is stale (listed by %s, this is %s): run `make generate`", deps.GoVersion, runtime.Version())
	}
}

// nscheck as `go install` makes it (no lean helper, cgo as the machine
// has it): its helpers execute a copy of it that initialises only what
// helpers link before serving, and the catalog gives the lean helper's
// verdicts.
func TestBuiltAsGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nscheck")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nscheck")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "initialised first") {
		t.Fatalf("nscheck version: %v\n%s", err, out)
	}

	// The copy, served a request that ends at once, with the init trace.
	img, err := os.OpenFile(filepath.Join(dir, "image"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	err = writeHelperImage(img, bin)
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	req, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	reqW.Close()
	repR, rep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(img.Name(), "prop.ns-id")
	cmd.Env = append(os.Environ(), helper.EnvVar+"=1", "GODEBUG=inittrace=1")
	cmd.ExtraFiles = []*os.File{rep, req} // fd 3 reply, fd 4 request
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	rep.Close()
	req.Close()
	repR.Close()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	deps, err := initorder.ParseDeps(helperDeps)
	if err != nil {
		t.Fatal(err)
	}
	first := deps.First(runtime.Version())
	n := 0
	for line := range strings.Lines(stderr.String()) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			n++
			if f[1] != "runtime" && !first(f[1]) {
				t.Errorf("a helper of the go-install binary initialised %s, which helpers do not link", f[1])
			}
		}
	}
	if n == 0 || !strings.Contains(stderr.String(), "init github.com/nscheck/nscheck/suites/uts @") {
		t.Fatalf("no init trace of the suites:\n%.2000s", stderr.String())
	}

	if os.Geteuid() != 0 {
		return
	}
	run := exec.Command(bin, "run", "--json", "-")
	data, _ := run.Output()
	r, err := report.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("exit %d: %v", run.ProcessState.ExitCode(), err)
	}
	if r.Summary.Failed != 0 || r.Summary.Passed == 0 || len(r.Errors) > 0 {
		t.Errorf("go-install run: %+v %v", r.Summary, r.Errors)
		for _, res := range r.Results {
			if res.State == report.Failed {
				t.Errorf("%s: %s", res.ID, res.Reason)
			}
		}
	}
}
