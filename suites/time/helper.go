package time

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/timens"
	"github.com/nscheck/nscheck/prop"
)

// setupAction is the helper that creates the time namespace.
const setupAction = "time.setup"

// A time namespace takes its offsets before its first process enters it, so
// it cannot be made by clone(CLONE_NEWTIME) (the child enters at once, with
// zero offsets). The helper unshares it instead: unshare(CLONE_NEWTIME)
// changes only the calling thread's time_for_children, while the offsets
// file, /proc/<pid>/timens_offsets, is the thread group leader's. So in
// helper mode the main goroutine stays on the main thread (an init that locks
// it keeps it locked for main), and the helper unshares, writes and spawns
// its child from there. The kernel allows unshare(CLONE_NEWTIME) in a
// multi-threaded process; only user and mount namespaces need one thread.
//
// Only a helper started for time.setup locks it: a process's first
// LockOSThread starts the runtime's template thread (one more clone(2)),
// which every other helper would pay at start for nothing. setup checks that
// it runs on the leader all the same.
func init() {
	if helper.StartedFor(setupAction) {
		runtime.LockOSThread()
	}
	helper.Handle(setupAction, setup)
	helper.Handle("time.clocks", func(struct{}) (any, error) { return readClocks() })
}

// setupArgs is what the check asks of the helper that owns the namespace.
type setupArgs struct {
	// Unshare creates the time namespace; false in the control.
	Unshare bool `json:"unshare"`
	// Before are the writes to timens_offsets before a process enters,
	// one write(2) each.
	Before [][]timens.Offset `json:"before,omitempty"`
	// Enter spawns a child, which enters time_for_children and reports
	// its clocks.
	Enter bool `json:"enter,omitempty"`
	// After are the writes once the child has entered.
	After [][]timens.Offset `json:"after,omitempty"`
}

// writeResult is the outcome of one write to timens_offsets.
type writeResult struct {
	Offsets string `json:"offsets"`
	Errno   int    `json:"errno,omitempty"`
	Err     string `json:"error,omitempty"`
}

func (w writeResult) String() string {
	if w.Err == "" {
		return fmt.Sprintf("%q: ok", w.Offsets)
	}
	return fmt.Sprintf("%q: %s", w.Offsets, w.Err)
}

// is reports whether the write failed with errno.
func (w writeResult) is(errno unix.Errno) bool { return w.Errno == int(errno) }

type setupFacts struct {
	// Own and ForChildren are the helper's ns/time and ns/time_for_children.
	Own         nsfs.ID       `json:"own"`
	ForChildren nsfs.ID       `json:"for_children"`
	Before      []writeResult `json:"before,omitempty"`
	Child       *clockFacts   `json:"child,omitempty"`
	// ChildForked says why the child got a user namespace of its own:
	// this kernel refused the vfork helpers are started with.
	ChildForked string        `json:"child_forked,omitempty"`
	After       []writeResult `json:"after,omitempty"`
}

// clockFacts is what a process sees of its time namespace.
type clockFacts struct {
	NS          nsfs.ID       `json:"ns"`
	MonoVDSO    time.Duration `json:"mono_vdso"`
	MonoSyscall time.Duration `json:"mono_syscall"`
	BootSyscall time.Duration `json:"boot_syscall"`
	Uptime      time.Duration `json:"uptime"`
}

func setup(a setupArgs) (any, error) {
	if tid := unix.Gettid(); tid != os.Getpid() {
		return nil, fmt.Errorf("time.setup runs on thread %d, not the leader %d: the offsets would miss the namespace", tid, os.Getpid())
	}
	if a.Unshare {
		if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
			return nil, &helper.StartError{Flags: unix.CLONE_NEWTIME, Err: fmt.Errorf("unshare: %w", err)}
		}
	}
	var f setupFacts
	f.Before = writeAll(a.Before)
	var err error
	if f.Own, err = nsfs.Stat("/proc/thread-self/ns/time"); err != nil {
		return nil, err
	}
	if f.ForChildren, err = nsfs.Stat("/proc/thread-self/ns/time_for_children"); err != nil {
		return nil, err
	}
	if a.Enter {
		f.Child = &clockFacts{}
		err := helper.Run(context.Background(), helper.Spec{Action: "time.clocks"}, f.Child)
		if err != nil && a.Unshare && helper.Errno(err) == unix.EINVAL {
			// Kernels before the time namespace was switched at exec
			// (6.1 does, 6.12 does not) refuse clone(CLONE_VM), the vfork
			// helpers are started with, while time_for_children differs
			// from the caller's. A child that gets a user namespace of its
			// own can be forked instead (Spec.Fork): it still enters the
			// new time namespace at clone.
			s := helper.Spec{Action: "time.clocks", Cloneflags: unix.CLONE_NEWUSER, Fork: true}
			s.UIDMappings, s.GIDMappings = helper.RootMapping()
			if ferr := helper.Run(context.Background(), s, f.Child); ferr != nil {
				return nil, &helper.Error{Op: vforkRefusedOp, Errno: int(unix.EINVAL), Msg: fmt.Sprintf("%v; forked with CLONE_NEWUSER instead: %v", err, ferr)}
			}
			f.ChildForked = "the kernel refused to vfork the child into the pending time namespace (" + err.Error() + "); forked it with a user namespace of its own"
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("child: %w", err)
		}
	}
	f.After = writeAll(a.After)
	return f, nil
}

func writeAll(writes [][]timens.Offset) []writeResult {
	out := make([]writeResult, 0, len(writes))
	for _, offs := range writes {
		out = append(out, writeOffsets(0, offs))
	}
	return out
}

func writeOffsets(pid int, offs []timens.Offset) writeResult {
	r := writeResult{Offsets: timens.Format(offs)}
	if err := timens.Write(pid, offs); err != nil {
		r.Err, r.Errno = err.Error(), int(helper.Errno(err))
	}
	return r
}

func readClocks() (clockFacts, error) {
	var c clockFacts
	var err error
	if c.NS, err = nsfs.Of(0, "time"); err != nil {
		return c, err
	}
	c.MonoVDSO = timens.MonotonicVDSO()
	if c.MonoSyscall, err = timens.Syscall(unix.CLOCK_MONOTONIC); err != nil {
		return c, err
	}
	if c.BootSyscall, err = timens.Syscall(unix.CLOCK_BOOTTIME); err != nil {
		return c, err
	}
	c.Uptime, err = timens.Uptime()
	return c, err
}

// start runs the setup helper for a check and holds it, so that the host
// can read its /proc/<pid>/timens_offsets and ns files. In the control the
// namespace is withheld: the helper writes to, and its child stays in, the
// sandbox's own time namespace.
func start(t *prop.Trial, a setupArgs) (*helper.Process, setupFacts, error) {
	var f setupFacts
	if _, err := os.Stat("/proc/self/ns/time"); errors.Is(err, os.ErrNotExist) {
		return nil, f, noTimeNS
	}
	a.Unshare = t.Isolated
	s := helper.Spec{Action: setupAction, Args: a, Hold: true}
	if t.Rootless && !t.Sandboxed {
		// unshare(CLONE_NEWTIME) and the offsets need CAP_SYS_ADMIN and
		// CAP_SYS_TIME: root of a user namespace of its own.
		s.Cloneflags = unix.CLONE_NEWUSER
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	p, err := t.Start(s)
	var he *helper.Error
	if errors.As(err, &he) && he.Op == vforkRefusedOp {
		return nil, f, prop.Skip("this kernel refuses a vfork-style clone (CLONE_VM, with which helpers are started) into a pending time namespace, and a forked child with a user namespace of its own could not be started either (EINVAL: %s); newer kernels (6.12 passes) switch the time namespace at exec and allow it; run the time properties on such a kernel, or allow user namespaces", he.Msg)
	}
	if helper.Errno(err) == unix.EINVAL && p != nil {
		return nil, f, noTimeNS
	}
	if err != nil {
		return nil, f, err
	}
	if err := p.Facts(&f); err != nil {
		return nil, f, err
	}
	if f.ChildForked != "" {
		t.Inside("child started", f.ChildForked)
	}
	for _, w := range f.Before {
		if w.is(unix.EPERM) {
			// Refused for want of privilege, not for a rule of the time
			// namespace: the check cannot tell anything.
			return nil, f, prop.Unmet("writing timens_offsets was refused with EPERM ("+w.String()+"): the helper lacks CAP_SYS_TIME in the user namespace that owns its time namespace",
				"give nscheck CAP_SYS_TIME (do not drop it from the bounding set; docker run --cap-add SYS_TIME)")
		}
	}
	return p, f, nil
}

// sysTime is the premise of every property that writes offsets.
var sysTime = prop.Capability(unix.CAP_SYS_TIME, "writing /proc/<pid>/timens_offsets")

// vforkRefusedOp marks the helper's report that its child could not be
// started into the new time namespace.
const vforkRefusedOp = "time.vfork-refused"

// noTimeNS is the skip of a kernel without time namespaces; a literal, as
// prop.Skip would format it at every helper's start.
var noTimeNS = &prop.SkipError{Reason: "this kernel has no time namespaces (/proc/self/ns/time absent or unshare(CLONE_NEWTIME) EINVAL): it needs CONFIG_TIME_NS=y, Linux 5.6+"}
