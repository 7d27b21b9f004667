package forkchain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creates user and PID namespaces: needs root")
	}
}

// The kernel refuses a user namespace below level 33 (ENOSPC): from the
// initial namespace the chain creates 33 and the 34th clone fails.
func TestUserChainStopsAtTheLimit(t *testing.T) {
	needRoot(t)
	r, err := Run(Spec{Flags: unix.CLONE_NEWUSER, Levels: 40, NSType: "user", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 33 || r.Errno != unix.ENOSPC || r.Step != StepClone || r.Shared {
		t.Fatalf("want 33 levels then ENOSPC from clone, got %+v", r)
	}
	// The deepest level mapped its own ids, as each level did.
	if !strings.Contains(r.Status, "\nUid:\t0\t0\t0\t0\n") {
		t.Errorf("deepest level's status has no mapped root uid:\n%s", r.Status)
	}
}

func TestPIDChainNests(t *testing.T) {
	needRoot(t)
	r, err := Run(Spec{Flags: unix.CLONE_NEWPID, Levels: 5, NSType: "pid", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 5 || r.Errno != 0 || r.Shared {
		t.Fatalf("want 5 nested levels, got %+v", r)
	}
	// NSpid lists the deepest level's pid in this namespace and the five
	// below it, where it is the first process: 1.
	var nspid []string
	for _, line := range strings.Split(r.Status, "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			nspid = strings.Fields(v)
		}
	}
	if len(nspid) != 6 || nspid[5] != "1" {
		t.Fatalf("deepest NSpid %v, want 6 entries ending in 1", nspid)
	}
}

// Without the flag a level shares its parent's namespace: the chain says
// so at the first level, which is what a negative control relies on.
func TestChainWithoutFlagIsShared(t *testing.T) {
	r, err := Run(Spec{Levels: 5, NSType: "pid", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Shared || r.Created != 0 || r.Errno != 0 {
		t.Fatalf("want a shared first level, got %+v", r)
	}
	// Without NSType nothing compares: plain forks all "nest".
	r, err = Run(Spec{Levels: 3, Timeout: 10 * time.Second})
	if err != nil || r.Created != 3 || r.Shared {
		t.Fatalf("plain forks: %+v, %v", r, err)
	}
}

// A refused step is a result, not an error: an unknown namespace type
// cannot be stat'ed.
func TestRefusedStepIsAResult(t *testing.T) {
	r, err := Run(Spec{Levels: 1, NSType: "no-such-type", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Step != StepStat || r.Errno != unix.ENOENT || r.Created != 0 {
		t.Fatalf("want ENOENT from stat, got %+v", r)
	}
}

func TestNoChainProcessLeft(t *testing.T) {
	needRoot(t)
	for range 20 {
		if _, err := Run(Spec{Flags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID, Levels: 3, Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	// Every level was waited for by its parent and the runner by Run:
	// this process has no child left.
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Fatalf("a child is left: wait4 gave %v", err)
	}
}

// Try probes each namespace type, the time namespace (clone3 only)
// included, and reports a refusal with its errno.
func TestTry(t *testing.T) {
	needRoot(t)
	for _, flag := range []uintptr{unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWNET, unix.CLONE_NEWNS,
		unix.CLONE_NEWPID, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME, unix.CLONE_NEWUSER} {
		if err := Try(flag, 10*time.Second); err != nil {
			t.Errorf("Try(%#x): %v", flag, err)
		}
	}
	// The kernel refuses a new user namespace that shares the
	// filesystem information of its parent.
	err := Try(unix.CLONE_NEWUSER|unix.CLONE_FS, 10*time.Second)
	if !errors.Is(err, unix.EINVAL) || !strings.HasPrefix(err.Error(), string(StepClone)) {
		t.Errorf("Try(CLONE_NEWUSER|CLONE_FS) = %v, want clone: EINVAL", err)
	}
}

func TestBadSpec(t *testing.T) {
	if _, err := Run(Spec{Levels: -1, Timeout: time.Second}); err == nil {
		t.Fatal("negative levels accepted")
	}
	if _, err := Run(Spec{Levels: 1}); err == nil {
		t.Fatal("a chain without a deadline accepted")
	}
}

func TestDecode(t *testing.T) {
	rec := func(words ...int32) []byte {
		var b bytes.Buffer
		for _, w := range words {
			_ = binary.Write(&b, binary.NativeEndian, w)
		}
		return b.Bytes()
	}
	r, err := decode(append(rec(3, int32(unix.EPERM), stepUIDMap, 0), "Name:\tx\n"...))
	if err != nil || r.Created != 3 || r.Errno != unix.EPERM || r.Step != StepUIDMap || r.Status != "Name:\tx\n" {
		t.Fatalf("decode: %+v, %v", r, err)
	}
	for _, bad := range [][]byte{nil, rec(1, 2), rec(1, 0, 99, 0), rec(-1, 0, 0, 0), rec(0, -5, 0, 0)} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%v) accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decode(data)
		if err == nil && (r.Created < 0 || r.Errno < 0) {
			t.Fatalf("decoded an invalid record: %+v", r)
		}
	})
}
