package prop

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The /proc of a test run is this process's own (go test never runs under
// unshare --pid without --mount-proc): the premise holds. The stale cases
// are the CLI tests' (cmd/nscheck view_test.go).
func TestOwnProcHoldsHere(t *testing.T) {
	if err := ProcUnmet(); err != nil {
		t.Fatalf("ProcUnmet() = %v in go test's own /proc", err)
	}
}

// Scratch space follows NSCHECK_SCRATCH, then TMPDIR; a missing, a plain
// file or a read-only directory is an unmet premise naming it and the fix,
// and ScratchDir says the same instead of a bare mkdtemp error.
func TestScratch(t *testing.T) {
	own := t.TempDir()
	t.Setenv(ScratchEnv, own)
	t.Setenv("TMPDIR", "/nonexistent")
	if got := ScratchRoot(); got != own {
		t.Fatalf("ScratchRoot() = %q with %s=%s", got, ScratchEnv, own)
	}
	dir, err := ScratchDir("nscheck-test-")
	if err != nil || filepath.Dir(dir) != own {
		t.Fatalf("ScratchDir = %q, %v; want a directory in %s", dir, err, own)
	}
	if ScratchMountPoint() != own {
		t.Errorf("ScratchMountPoint() = %q, want the usable root %s", ScratchMountPoint(), own)
	}

	file := filepath.Join(own, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ root, want string }{
		{"/nonexistent", "no such file"},
		{file, "not a directory"},
		{"/proc/self", "not writable"}, // a directory no one can make entries in
	} {
		t.Setenv(ScratchEnv, "")
		t.Setenv("TMPDIR", tc.root)
		err := ScratchUnmet()
		var u *UnmetError
		if !errors.As(err, &u) || !strings.Contains(u.Cause, tc.want) || u.Fix != ScratchFix {
			t.Errorf("scratch root %s: ScratchUnmet() = %v, want unmet naming %q", tc.root, err, tc.want)
		}
		if _, err := ScratchDir("x-"); !errors.As(err, &u) {
			t.Errorf("scratch root %s: ScratchDir error %v is not the unmet premise", tc.root, err)
		}
	}
	// With TMPDIR missing a sandbox still finds a directory to mount on.
	t.Setenv("TMPDIR", "/nonexistent")
	if mp := ScratchMountPoint(); mp == "" || mp == "/nonexistent" {
		t.Errorf("ScratchMountPoint() = %q, want one of the fallbacks", mp)
	}
}

// Every property has the /proc premise, first.
func TestEveryPropertyHasOwnProc(t *testing.T) {
	p := &Property{ID: "x.y", Needs: NeedRoot, NoControl: "test"}
	if all := p.AllPremises(); len(all) == 0 || all[0].Key != OwnProc.Key {
		t.Fatalf("AllPremises starts with %v, not the /proc premise", all)
	}
}
