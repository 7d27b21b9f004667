package helper

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsguard"
)

func init() {
	// test.nested starts a helper of its own with the flags it is given
	// and returns that helper's error.
	Handle("test.nested", func(flags uintptr) (any, error) {
		return nil, Run(context.Background(), Spec{Action: "test.echo", Args: "nested", Cloneflags: flags}, nil)
	})
}

// asked is what the namespace guard says of a helper that the kernel left
// in its parent's namespace of typ.
func asked(t *testing.T, err error, typ string) {
	t.Helper()
	var g *nsguard.Error
	if !errors.As(err, &g) || !g.Asked || g.Type != typ {
		t.Fatalf("err = %v, want the guard's: the kernel did not create a new %s namespace", err, typ)
	}
}

// ignoring injects the fault for the rest of the test.
func ignoring(t *testing.T, flags uintptr) {
	IgnoreCloneFlags(flags)
	t.Cleanup(func() { IgnoreCloneFlags(0) })
}

// On a kernel that ignores CLONE_NEWUTS (a fault injected here) the helper
// runs nothing and its error says why, as a *nsguard.Error with Asked set.
func TestGuardStopsHelperLeftInParentNamespace(t *testing.T) {
	uids, gids := RootMapping()
	ignoring(t, unix.CLONE_NEWUTS)
	var f echoFacts
	err := Run(context.Background(), Spec{Action: "test.echo", Args: "acted", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS,
		UIDMappings: uids, GIDMappings: gids}, &f)
	asked(t, err, "uts")
	if f.Echo != "" {
		t.Errorf("the action ran: %+v", f)
	}
	// What is not dropped still passes the guard.
	if err := Run(context.Background(), Spec{Action: "test.echo", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWIPC,
		UIDMappings: uids, GIDMappings: gids}, nil); err != nil {
		t.Errorf("a helper that got its namespaces: %v", err)
	}
	assertNoneLive(t)
}

// The fault reaches the helpers of helpers (IgnoreEnvVar), and the guard's
// error crosses both process boundaries intact.
func TestGuardStopsNestedHelpers(t *testing.T) {
	uids, gids := RootMapping()
	ignoring(t, unix.CLONE_NEWIPC)
	err := Run(context.Background(), Spec{Action: "test.nested", Args: uintptr(unix.CLONE_NEWIPC),
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS, UIDMappings: uids, GIDMappings: gids}, nil)
	asked(t, err, "ipc")
	assertNoneLive(t)
}

func TestGuardSetRoundTrip(t *testing.T) {
	set, err := nsguard.Observe(unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWPID)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 {
		t.Fatalf("Observe = %v, want mnt, uts and pid", set)
	}
	back, err := nsguard.Parse(set.String())
	if err != nil || len(back) != 3 || back["mnt"] != set["mnt"] || back["pid"] != set["pid"] {
		t.Fatalf("Parse(%q) = %v, %v", set.String(), back, err)
	}
	// This process is in all of them: Verify must refuse.
	asked(t, back.Verify(), "mnt")
	if _, err := nsguard.Parse("mnt=1"); err == nil {
		t.Error("a malformed entry parsed")
	}
}

// TestExecErrorBrokenPID: os/exec's child in a new PID namespace signals
// itself by getpid() after PR_SET_PDEATHSIG; ESRCH there is the guard's
// report of a broken PID namespace, any other failure a StartError.
func TestExecErrorBrokenPID(t *testing.T) {
	cmd := &exec.Cmd{SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	esrch := fmt.Errorf("fork/exec: %w", unix.ESRCH)
	var g *nsguard.Error
	if err := execError(unix.CLONE_NEWPID|unix.CLONE_NEWUSER, cmd, esrch); !errors.As(err, &g) || g.Type != "pid" || !g.Asked || g.Broken == "" {
		t.Errorf("ESRCH in a new PID namespace: %v, want the guard's broken PID namespace", err)
	}
	var se *StartError
	for name, err := range map[string]error{
		"no new PID namespace": execError(unix.CLONE_NEWUSER, cmd, esrch),
		"another errno":        execError(unix.CLONE_NEWPID, cmd, fmt.Errorf("fork/exec: %w", unix.EPERM)),
		"no Pdeathsig":         execError(unix.CLONE_NEWPID, &exec.Cmd{SysProcAttr: &syscall.SysProcAttr{}}, esrch),
	} {
		if !errors.As(err, &se) || errors.As(err, &g) {
			t.Errorf("%s: %v, want a StartError", name, err)
		}
	}
}
