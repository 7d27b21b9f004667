package prop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
)

// The sandbox of a control: a helper with its own mount and PID namespaces
// plus the namespace under test (and a user namespace when rootless). It makes
// every mount private, mounts its own /proc (so PIDs it reads are its own) and
// a tmpfs on /tmp, then runs the check as the observer with the namespace
// under test withheld from the inner helpers. Whatever they leak lands in the
// sandbox, which dies (and with it every namespace and process in it) when it
// answers. The real host is never the victim of a control.
const sandboxAction = "prop.sandbox"

// SandboxFlags are the namespaces every sandbox has besides the tested one.
const SandboxFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID

type sandboxArgs struct {
	ID       string `json:"id"`
	Rootless bool   `json:"rootless"`
}

func init() {
	helper.Handle(sandboxAction, runSandbox)
}

func runControl(ctx context.Context, p *Property, rootless bool) (Observation, error) {
	ctx, cancel := context.WithTimeout(ctx, TrialTimeout)
	defer cancel()
	s := helper.Spec{
		Action:     sandboxAction,
		Args:       sandboxArgs{ID: p.ID, Rootless: rootless},
		Cloneflags: SandboxFlags | p.Flag,
		Timeout:    TrialTimeout,
	}
	switch {
	case rootless:
		s.Cloneflags |= unix.CLONE_NEWUSER
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	case p.Flag&unix.CLONE_NEWUSER != 0:
		// Root, and the user namespace is under test: the sandbox's own
		// user namespace maps every id to itself, so that it plays the
		// host (unmapped, it would lose every capability at exec).
		s.UIDMappings, s.GIDMappings = identityMapping(), identityMapping()
	}
	var obs Observation
	err := helper.Run(ctx, s, &obs)
	return obs, err
}

// identityMapping maps every id to itself, as in the initial user namespace.
func identityMapping() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
}

// runSandbox is the sandbox's side: prepare, then run the check unisolated.
func runSandbox(a sandboxArgs) (any, error) {
	p, ok := Lookup(a.ID)
	if !ok {
		return nil, fmt.Errorf("sandbox: unknown property %q", a.ID)
	}
	if err := PrepareSandbox(); err != nil {
		return nil, err
	}
	t := newTrial(context.Background(), p, false, a.Rootless, true)
	err := p.Check(t)
	t.finish()
	if err != nil {
		return nil, err
	}
	return t.obs, nil
}

// PrepareSandbox turns a fresh mount+PID namespace into a disposable host:
// nothing mounted from here on propagates out; /proc shows this PID
// namespace; /tmp is a private tmpfs.
func PrepareSandbox() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return helper.Fail("mount --make-rprivate /", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return helper.Fail("mount proc /proc", err)
	}
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=16m"); err != nil {
		return helper.Fail("mount tmpfs /tmp", err)
	}
	return os.Setenv("TMPDIR", "/tmp")
}

// SkipError marks a check that the environment cannot run; Reason names
// what is missing and the fix.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skip builds a SkipError.
func Skip(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// ExplainStart turns the kernel's refusal to create namespaces into a skip
// reason naming the cause and the fix. Diagnosis code may replace it with a
// richer one; it must return "" when the failure is not environmental.
var ExplainStart = func(e *helper.StartError) string {
	what := helper.FlagNames(e.Flags)
	switch helper.Errno(e) {
	case unix.EPERM:
		return fmt.Sprintf("the kernel refused %s with EPERM: no privilege for it here (run as root, or allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1), or a seccomp filter denies it", what)
	case unix.EACCES:
		return fmt.Sprintf("the kernel refused %s with EACCES: an LSM (AppArmor's userns restriction) denies it; see `nscheck env`", what)
	case unix.ENOSPC:
		return fmt.Sprintf("the kernel refused %s with ENOSPC: a user.max_*_namespaces limit is 0 or reached; raise it with sysctl -w user.max_<type>_namespaces=N", what)
	case unix.EINVAL:
		return fmt.Sprintf("the kernel refused %s with EINVAL: this kernel lacks the namespace type (enable its CONFIG_*_NS option)", what)
	case unix.EUSERS:
		return fmt.Sprintf("the kernel refused %s with EUSERS: the user namespace nesting limit (32) is reached", what)
	}
	return ""
}

// classify maps a check's error to a skip when the environment caused it.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var skip *SkipError
	if errors.As(err, &skip) {
		return err
	}
	var se *helper.StartError
	if errors.As(err, &se) {
		if reason := ExplainStart(se); reason != "" {
			return &SkipError{Reason: reason}
		}
	}
	return err
}

func flagName(f uintptr) string { return helper.FlagNames(f) }
