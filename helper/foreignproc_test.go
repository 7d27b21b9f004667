package helper

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/vforkexec"
)

func init() {
	// test.userns-child, run as init of a new PID namespace in the host's
	// mount namespace (whose /proc is the host's), starts a helper in a
	// user namespace mapped to root, through os/exec when fork is set.
	Handle("test.userns-child", func(fork bool) (any, error) {
		uids, gids := RootMapping()
		var f echoFacts
		err := Run(context.Background(), Spec{Action: "test.echo", Args: "mapped", Cloneflags: unix.CLONE_NEWUSER,
			UIDMappings: uids, GIDMappings: gids, Fork: fork}, &f)
		return f, err
	})
}

// Go's os/exec writes a new user namespace's id maps through
// /proc/<pid>, with the child's PID in the parent's PID namespace; where
// /proc is an ancestor namespace's, that PID is another process's. Such a
// start is refused before the clone, as a skip that says why, and never
// writes a map; vforkexec's children map themselves through /proc/self
// and start.
func TestUserNSMapsUnderForeignProc(t *testing.T) {
	needRoot(t)
	var f echoFacts
	err := Run(context.Background(), Spec{Action: "test.userns-child", Args: true, Cloneflags: unix.CLONE_NEWPID}, &f)
	var e *Error
	if !errors.As(err, &e) || e.Op != SkipOp || !strings.Contains(e.Msg, "/proc/<pid>") || !strings.Contains(e.Msg, "another PID namespace") {
		t.Fatalf("os/exec under a foreign /proc: err = %v (%#v), want a skip naming /proc/<pid> and the foreign proc", err, e)
	}
	if f.Echo != "" {
		t.Errorf("the helper started: %+v", f)
	}
	if vforkexec.Eligible(0, nil, nil, nil) { // amd64 and arm64: the child maps itself
		f = echoFacts{}
		if err := Run(context.Background(), Spec{Action: "test.userns-child", Args: false, Cloneflags: unix.CLONE_NEWPID}, &f); err != nil || f.Echo != "mapped" {
			t.Errorf("vforkexec under a foreign /proc: %+v, %v", f, err)
		}
	}
	// With a proc of its own PID namespace, os/exec maps as it always did.
	f = echoFacts{}
	uids, gids := RootMapping()
	if err := Run(context.Background(), Spec{Action: "test.echo", Args: "mapped", Cloneflags: unix.CLONE_NEWUSER,
		UIDMappings: uids, GIDMappings: gids, Fork: true}, &f); err != nil || f.Echo != "mapped" {
		t.Errorf("os/exec with this namespace's /proc: %+v, %v", f, err)
	}
	assertNoneLive(t)
}
