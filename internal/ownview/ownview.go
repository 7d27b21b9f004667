// Package ownview gives `nscheck run` and `nscheck env` the view of the
// system their checks need when the caller's is wrong for them: a /proc of
// another PID namespace (unshare --pid without --mount-proc), a /proc with
// only its process directories (subset=pid: systemd's ProcSubset=pid), or no
// writable scratch space (a container image without /tmp, a read-only
// root). nscheck then re-executes itself in a mount namespace of its own,
// checks by nsfs identity that it really is a new one before it touches
// anything, makes every mount private there, mounts a proc of its PID
// namespace on /proc and a tmpfs for its scratch space (prop.ScratchEnv),
// and carries on; the caller waits and exits with its exit code. The
// caller's mounts never change.
//
// When that is impossible (no CAP_SYS_ADMIN over the mount or PID
// namespace), the run goes on in the caller's view: every property skips
// on the unmet premise (prop.OwnProc, prop.Scratch), and the run reports
// the cause and the fix once (State.Err).
package ownview

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/prop"
)

// State is what nscheck found and did about its view, for the diagnosis
// and the report.
type State struct {
	// Proc is "own", or why the caller's /proc was not (the unmet
	// premise).
	Proc string `json:"proc"`
	// Scratch is the scratch directory, or why the caller had none.
	Scratch string `json:"scratch"`
	// Mounted lists what nscheck mounted for itself, in its own mount
	// namespace ("proc on /proc").
	Mounted []string `json:"mounted,omitempty"`
	// Err says why nscheck could not get a correct view, with the fix;
	// "" when it has one. A /proc of another PID namespace fails the run
	// (Fatal): every property skips on it, and the run says so once. No
	// scratch space only skips the properties that need it.
	Err   string `json:"error,omitempty"`
	Fatal bool   `json:"fatal,omitempty"`
}

// envVar carries the caller's mount namespace and state to the
// re-executed nscheck; it is dropped from the environment at once, so
// helpers never see it.
const envVar = "NSCHECK_OWNVIEW"

type handoff struct {
	ParentMnt nsfs.ID `json:"parent_mnt"`
	State     State   `json:"state"`
}

var current State

// Current is the state of this process's view (set by Ensure).
func Current() State { return current }

// Ensure gets this process a correct view, re-executing it when needed.
// When it re-executed, done is true and code is the exit code of the
// re-executed nscheck, which did the work; otherwise the caller goes on,
// and Current says what was found.
func Ensure() (code int, done bool) {
	if v, ok := os.LookupEnv(envVar); ok {
		os.Unsetenv(envVar)
		current = setUp(v)
		return 0, false
	}
	current = State{Proc: "own", Scratch: prop.ScratchRoot()}
	procErr, scratchErr := prop.ProcUnmet(), prop.ScratchUnmet()
	if procErr != nil {
		current.Proc = reason(procErr)
	}
	if scratchErr != nil {
		current.Scratch = reason(scratchErr)
	}
	if procErr == nil && scratchErr == nil {
		return 0, false
	}
	if !prop.Capable() {
		current.Err, current.Fatal = cannot("it lacks CAP_SYS_ADMIN to make a mount namespace of its own")
		return 0, false
	}
	code, err := reexec(current)
	if err != nil {
		current.Err, current.Fatal = cannot(fmt.Sprintf("re-executing itself in a mount namespace of its own failed: %v", err))
		return 0, false
	}
	return code, true
}

func reason(err error) string {
	if r, ok := prop.SkipReason(err); ok {
		return r
	}
	return err.Error()
}

// cannot is the error of a view nscheck could not fix (for why): the first
// problem of the caller's view, why, and the fix; fatal when the problem
// is the /proc.
func cannot(why string) (msg string, fatal bool) {
	for i, err := range []error{prop.ProcUnmet(), prop.ScratchUnmet()} {
		var u *prop.UnmetError
		switch {
		case errors.As(err, &u):
			return fmt.Sprintf("%s, and nscheck cannot get a view of its own: %s; fix: %s", u.Cause, why, u.Fix), i == 0
		case err != nil:
			return fmt.Sprintf("%v, and nscheck cannot get a view of its own: %s", err, why), i == 0
		}
	}
	return "nscheck cannot get a view of its own: " + why, false
}

// reexec runs this nscheck again, with the same arguments, in a new mount
// namespace, and returns its exit code. Signals that would end this
// process are passed on; a terminal's SIGINT reaches both already.
func reexec(s State) (int, error) {
	mnt, err := nsfs.Of(0, "mnt")
	if err != nil {
		return 0, err
	}
	h, err := json.Marshal(handoff{ParentMnt: mnt, State: s})
	if err != nil {
		return 0, err
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envVar+"="+string(h))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGINT {
				_ = cmd.Process.Signal(sig)
			}
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

// setUp is the re-executed side: check the mount namespace is new, then
// mount what the caller lacked (ownmount makes every mount private first).
func setUp(v string) State {
	var h handoff
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return State{Err: fmt.Sprintf("%s: %v", envVar, err)}
	}
	s := h.State
	fail := func(what string, err error) State {
		s.Err, s.Fatal = cannot(fmt.Sprintf("it could not %s in a mount namespace of its own: %v", what, err))
		return s
	}
	if prop.ProcUnmet() != nil {
		if err := ownmount.Mount(h.ParentMnt, "proc", "/proc"); err != nil {
			return fail("mount a proc for its PID namespace", err)
		}
		s.Mounted = append(s.Mounted, "proc on /proc")
		if err := prop.ProcUnmet(); err != nil {
			return fail("get a /proc of its own", err)
		}
	}
	if prop.ScratchUnmet() != nil {
		dir := prop.ScratchMountPoint()
		if dir == "" {
			return fail("mount a tmpfs for its scratch space", errors.New("no directory to mount it on"))
		}
		if err := ownmount.Mount(h.ParentMnt, "tmpfs", dir); err != nil {
			return fail("mount a tmpfs for its scratch space", err)
		}
		s.Mounted = append(s.Mounted, "tmpfs on "+dir+" (scratch space)")
		if err := os.Setenv(prop.ScratchEnv, dir); err != nil {
			return fail("use its scratch tmpfs", err)
		}
		if err := prop.ScratchUnmet(); err != nil {
			return fail("use its scratch tmpfs", err)
		}
	}
	return s
}
