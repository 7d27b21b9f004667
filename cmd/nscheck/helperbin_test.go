package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/leanbuild"
	"github.com/nscheck/nscheck/internal/release"
	"github.com/nscheck/nscheck/internal/report"
)

// nscheck as `make build` makes it, with the lean helper embedded, runs the
// catalog through that helper and gives the same verdicts.
func TestBuiltWithEmbeddedHelper(t *testing.T) {
	goBin := needRootBuild(t, "builds two binaries")
	dir := t.TempDir()
	bin := filepath.Join(dir, "nscheck")
	if err := leanbuild.Nscheck(filepath.Join("..", ".."), bin, leanbuild.Options{Go: goBin}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "embedded lean helper") {
		t.Fatalf("nscheck version: %v\n%s", err, out)
	}
	runsCatalog(t, bin)
}

// What a user's `go install github.com/nscheck/nscheck/cmd/nscheck@latest`
// gives at a release (this tree as release v0.99.0, from a module proxy on
// disk): a binary that runs its helpers from the release's lean helper and
// gives the same verdicts. Without the release's files, the same install
// runs its helpers from itself and says why.
func TestGoInstallRelease(t *testing.T) {
	needRootBuild(t, "builds the lean helpers and installs nscheck twice")
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git to list the module's files with")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := release.Files(root, "v0.99.0")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, tc := range []struct {
		version string
		files   map[string][]byte
		helper  string
	}{
		{"v0.99.0", rel, "helper: the lean helper of release v0.99.0"},
		{"v0.98.0", nil, "helper: nscheck itself, the helpers' packages initialised first (not a release"},
	} {
		proxy := filepath.Join(work, "proxy-"+tc.version)
		if err := release.Proxy(proxy, root, tc.version, tc.files); err != nil {
			t.Fatal(err)
		}
		bin, err := release.GoInstall(proxy, tc.version, work, filepath.Join(work, "bin-"+tc.version))
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "nscheck "+tc.version+"\n") || !strings.Contains(string(out), tc.helper) {
			t.Fatalf("nscheck version of the %s install: %v\n%s\nwant %q", tc.version, err, out, tc.helper)
		}
		if tc.files != nil {
			runsCatalog(t, bin)
		}
	}
}

// needRootBuild skips a test that builds nscheck (it costs what says) and
// runs its catalog, under -short, without root or without a go toolchain;
// it returns the go command.
func needRootBuild(t *testing.T, what string) string {
	t.Helper()
	needRoot(t)
	if testing.Short() {
		t.Skip(what)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build with")
	}
	return goBin
}

// runsCatalog runs the whole catalog with bin and fails on a failed
// property, a harness error or a run that passed nothing.
func runsCatalog(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--json", "-")
	data, _ := cmd.Output()
	rep, err := report.Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("exit %d: %v", cmd.ProcessState.ExitCode(), err)
	}
	if rep.Summary.Failed != 0 || rep.Summary.Passed == 0 || len(rep.Errors) > 0 {
		t.Errorf("%s run: %+v %v", bin, rep.Summary, rep.Errors)
		for _, r := range rep.Results {
			if r.State == report.Failed {
				t.Errorf("%s: %s", r.ID, r.Reason)
			}
		}
	}
}
