package nsguard

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsfs"
)

func TestSetRoundTrip(t *testing.T) {
	s := Set{"mnt": {Dev: 4, Ino: 4026531841}, "pid": {Dev: 4, Ino: 4026531836}}
	if got := s.String(); got != "mnt=4:4026531841,pid=4:4026531836" {
		t.Errorf("String() = %q", got)
	}
	back, err := Parse(s.String())
	if err != nil || len(back) != 2 || back["mnt"] != s["mnt"] || back["pid"] != s["pid"] {
		t.Errorf("Parse = %v, %v", back, err)
	}
	if s, err := Parse(""); err != nil || s != nil {
		t.Errorf("Parse(\"\") = %v, %v", s, err)
	}
	for _, bad := range []string{"mnt", "mnt=4", "mnt=x:1", "mnt=1:2,"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// This process is in its own namespaces: a child that asked to leave them
// and did not is refused, as is an action forbidden here; other
// namespaces and a zero ID forbid nothing.
func TestCheck(t *testing.T) {
	set, err := Observe(unix.CLONE_NEWNS | unix.CLONE_NEWUTS)
	if err != nil {
		t.Fatal(err)
	}
	var g *Error
	if err := set.Verify(); !errors.As(err, &g) || !g.Asked || g.Type != "mnt" || g.ID != set["mnt"] {
		t.Fatalf("Verify() = %v, want the mount namespace not created", err)
	}
	if got, want := g.Error(), "the kernel did not create a new mount namespace: the helper cloned with CLONE_NEWNS"; got[:len(want)] != want {
		t.Errorf("Error() = %q", got)
	}
	if err := Refuse("uts", set["uts"]); !errors.As(err, &g) || g.Asked {
		t.Errorf("Refuse = %v, want a refusal that is not a leak", err)
	}
	if err := Refuse("uts", nsfs.ID{Dev: 1, Ino: 1}); err != nil {
		t.Errorf("another namespace refused: %v", err)
	}
	if err := Refuse("uts", nsfs.ID{}); err != nil {
		t.Errorf("a zero ID refused: %v", err)
	}
}

func TestNames(t *testing.T) {
	for typ, want := range map[string]string{"mnt": "the kernel did not create a new mount namespace", "net": "the kernel did not create a new network namespace",
		"pid": "the kernel did not create a new PID namespace", "cgroup": "the kernel did not create a new cgroup namespace"} {
		if got := Leak(typ); got != want {
			t.Errorf("Leak(%s) = %q", typ, got)
		}
	}
}

// BenchmarkGuard is what the guard adds to a helper with every namespace
// type: the parent's Observe and encoding, the child's Parse and Verify
// (a spawn costs about 3 ms).
func BenchmarkGuard(b *testing.B) {
	var all uintptr
	for _, f := range nsfs.Flags {
		all |= f
	}
	for b.Loop() {
		s, err := Observe(all)
		if err != nil {
			b.Fatal(err)
		}
		back, err := Parse(s.String())
		if err != nil {
			b.Fatal(err)
		}
		_ = back.Verify() // refused here: this process is in them
	}
}

// TestVerifyPID: a helper cloned for a new PID namespace is its first
// process, so getpid() must be 1; this test process is not, and the check
// says so as a broken PID namespace (never as one not created).
func TestVerifyPID(t *testing.T) {
	own, err := nsfs.Stat("/proc/thread-self/ns/pid")
	if err != nil || unix.Getpid() == 1 {
		t.Skip("needs /proc/thread-self/ns/pid and not to be pid 1:", err)
	}
	// Any ID but this process's own: the namespace was created.
	err = Set{"pid": nsfs.ID{Dev: own.Dev, Ino: own.Ino + 1}}.Verify()
	var g *Error
	if !errors.As(err, &g) || !g.Asked || g.Broken == "" || g.Type != "pid" {
		t.Fatalf("Verify = %v, want a broken PID namespace", err)
	}
	if !strings.HasPrefix(err.Error(), "the kernel's PID namespace is broken: the first process of a new PID namespace") {
		t.Errorf("Error() = %q", err)
	}
	if g.Cause() != Broken("pid") || g.Detail() != g.Broken {
		t.Errorf("Cause %q, Detail %q", g.Cause(), g.Detail())
	}
	if err := (Set{"uts": {Dev: own.Dev, Ino: own.Ino + 1}}).Verify(); err != nil {
		t.Errorf("without a new PID namespace: %v", err)
	}
}
