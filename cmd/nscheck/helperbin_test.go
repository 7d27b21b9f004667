package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/report"
)

// nscheck as `make build` makes it, with the lean helper embedded, runs the
// catalog through that helper and gives the same verdicts.
func TestBuiltWithEmbeddedHelper(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build with")
	}
	dir := t.TempDir()
	helperBin := filepath.Join("nscheck-helper.bin") // next to the embed directive
	bin := filepath.Join(dir, "nscheck")
	for _, args := range [][]string{
		{"build", "-o", helperBin, "github.com/nscheck/nscheck/internal/helperbin"},
		{"build", "-tags", "helperbin", "-o", bin, "."},
	} {
		cmd := exec.Command(goBin, args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "embedded lean helper") {
		t.Fatalf("nscheck version: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--json", "-")
	data, _ := cmd.Output()
	rep, err := report.Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("exit %d: %v", cmd.ProcessState.ExitCode(), err)
	}
	if rep.Summary.Failed != 0 || rep.Summary.Passed == 0 || len(rep.Errors) > 0 {
		t.Errorf("embedded-helper run: %+v %v", rep.Summary, rep.Errors)
		for _, r := range rep.Results {
			if r.State == report.Failed {
				t.Errorf("%s: %s", r.ID, r.Reason)
			}
		}
	}
}
