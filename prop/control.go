package prop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/idmap"
	"github.com/nscheck/nscheck/internal/ownmount"
)

// The sandbox of a control: a helper with its own mount and PID namespaces
// plus the namespace under test (and a user namespace when rootless). It makes
// every mount private, mounts its own /proc (so PIDs it reads are its own) and
// a tmpfs for its scratch space, then runs the check as the observer with the namespace
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
	ctx, cancel := context.WithTimeout(ctx, TrialTimeout())
	defer cancel()
	s, err := sandboxSpec(p.ID, p.Flag, rootless)
	if err != nil {
		return Observation{}, err
	}
	var obs Observation
	err = helper.Run(ctx, s, &obs)
	return obs, err
}

// sandboxSpec is the helper of a control's sandbox for property id with
// flag under test (id "" only prepares the sandbox: the ControlSandbox
// premise).
func sandboxSpec(id string, flag uintptr, rootless bool) (helper.Spec, error) {
	s := helper.Spec{
		Action:     sandboxAction,
		Args:       sandboxArgs{ID: id, Rootless: rootless},
		Cloneflags: SandboxFlags | flag,
		Timeout:    TrialTimeout(),
	}
	switch {
	case rootless:
		// Root inside the sandbox's own user namespace: it must mount its
		// /proc and /tmp.
		s.Cloneflags |= unix.CLONE_NEWUSER
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	case flag&unix.CLONE_NEWUSER != 0:
		// Root, and the user namespace is under test: the sandbox's own
		// user namespace maps every id to itself, so that it plays the
		// host (unmapped, it would lose every capability at exec).
		uids, err := identityMapping("uid")
		if err != nil {
			return s, err
		}
		gids, err := identityMapping("gid")
		if err != nil {
			return s, err
		}
		s.UIDMappings, s.GIDMappings = uids, gids
	}
	return s, nil
}

// ControlSandbox is the premise that the sandbox of a control with flag
// under test can be created and prepared here: its namespaces cloned, its
// mounts made private, its own proc mounted. It is probed by preparing one
// that then answers at once.
func ControlSandbox(flag uintptr) Premise {
	return Premise{Key: "sandbox:" + helper.FlagNames(flag), Why: "the negative control's sandbox", Probe: func(ctx context.Context) error {
		s, err := sandboxSpec("", flag, !Capable())
		if err != nil {
			return err
		}
		err = helper.Run(ctx, s, nil)
		if skip, ok := asSkip(err); ok {
			return Unmet(skip.Reason, "")
		}
		return err
	}}
}

// identityMapping maps every id valid in this process's user namespace to
// itself: all of them in the initial one, only the mapped ones in a
// container's.
func identityMapping(kind string) ([]syscall.SysProcIDMap, error) {
	m, err := idmap.Read(0, kind)
	if err != nil {
		return nil, err
	}
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, e := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(e.Inside), HostID: int(e.Inside), Size: int(e.Count)})
	}
	return out, nil
}

// runSandbox is the sandbox's side: prepare, then run the check unisolated.
func runSandbox(a sandboxArgs) (any, error) {
	if a.ID == "" {
		// The ControlSandbox probe: prepare, and answer.
		if err := PrepareSandbox(); err != nil {
			if reason, ok := SkipReason(err); ok {
				return nil, &helper.Error{Op: skipOp, Msg: reason}
			}
			return nil, err
		}
		return Observation{}, nil
	}
	p, ok := Lookup(a.ID)
	if !ok {
		return nil, fmt.Errorf("sandbox: unknown property %q", a.ID)
	}
	err := PrepareSandbox()
	if err == nil {
		t := newTrial(context.Background(), p, false, a.Rootless, true)
		// A refusal to create namespaces goes back as it is: the host
		// explains it (asSkip), with the diagnosis that helpers do not
		// link.
		err = classifyEnv(p.Check(t))
		t.finish()
		if err == nil {
			return t.obs, nil
		}
	}
	if reason, ok := SkipReason(err); ok {
		return nil, &helper.Error{Op: skipOp, Msg: reason}
	}
	return nil, err
}

// skipOp marks a wire Error that is a skip: the environment cannot run the
// control (it crosses the process boundary as an Error like any other), or
// helper cannot start a helper as asked here.
const skipOp = helper.SkipOp

// asSkip turns a control's wire skip, or the kernel's refusal to create
// its namespaces (the sandbox's, or those of a helper inside it), into a
// SkipError.
func asSkip(err error) (*SkipError, bool) {
	var e *helper.Error
	if errors.As(err, &e) && e.Op == skipOp {
		return &SkipError{Reason: e.Msg}, true
	}
	if se, ok := helper.Refused(err); ok {
		if reason := ExplainStart(se); reason != "" {
			return &SkipError{Reason: reason}, true
		}
	}
	return nil, false
}

// PrepareSandbox turns a fresh mount+PID namespace into a disposable host:
// nothing mounted from here on propagates out; /proc shows this PID
// namespace; the scratch space (ScratchRoot) is a private tmpfs.
// It runs only in the sandbox helper, which the namespace guard has let
// run only once it is in a mount and a PID namespace of its own (see
// package helper): on a kernel that ignores CLONE_NEWNS it is never
// reached, and the host's / and /proc stay as they are.
func PrepareSandbox() error {
	if err := ownmount.MakePrivate(); err != nil {
		return classifyEnv(err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if errors.Is(err, unix.EPERM) {
			// The kernel refuses a new proc inside a user namespace while
			// part of the existing one is hidden (mount_too_revealing).
			return Skip("mounting a proc for the sandbox failed with EPERM: inside a user namespace the kernel refuses it while parts of /proc are over-mounted (a read-only /proc/sys, masked paths, as container runtimes do); run nscheck where /proc is fully visible")
		}
		return helper.Fail("mount proc /proc", err)
	}
	// The scratch space of the checks it runs (ScratchDir): a private
	// tmpfs. With no directory to mount it on there is none, and the
	// checks that need one skip on their own premise (Scratch).
	scratch := ScratchMountPoint()
	if scratch == "" {
		return nil
	}
	if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=16m"); err != nil {
		return helper.Fail("mount tmpfs "+scratch, err)
	}
	return os.Setenv(ScratchEnv, scratch)
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
	case unix.ENOSYS:
		return fmt.Sprintf("the kernel refused %s with ENOSYS: clone3 is denied here (a seccomp filter, as container engines' default profiles do, or a kernel before 5.3)", what)
	case unix.EUSERS:
		return fmt.Sprintf("the kernel refused %s with EUSERS: the user namespace nesting limit (32) is reached", what)
	}
	return ""
}

// classify maps a check's error to a skip when the environment caused it.
func classify(err error) error {
	var skip *SkipError
	if !errors.As(err, &skip) {
		if s, ok := asSkip(err); ok {
			return s
		}
	}
	return classifyEnv(err)
}

// classifyEnv is classify but for the kernel's refusals to create
// namespaces, which it leaves as they are.
func classifyEnv(err error) error {
	if err == nil {
		return nil
	}
	var skip *SkipError
	if errors.As(err, &skip) {
		return err
	}
	if rootNotMount(err) {
		return &SkipError{Reason: ownmount.ErrRootNotMount.Error()}
	}
	if errors.Is(err, unix.EROFS) {
		return &SkipError{Reason: fmt.Sprintf("a file the check must write is on a read-only mount (%v); /proc/sys read-only is how container runtimes mount it: run nscheck where /proc/sys is writable (on the host, or a privileged container)", err)}
	}
	return err
}

func flagName(f uintptr) string { return helper.FlagNames(f) }

// rootNotMount reports whether err is a helper's (or the sandbox's) report
// that / could not be made private because it is not a mount point.
func rootNotMount(err error) bool {
	var e *helper.Error
	return errors.As(err, &e) && e.Msg == ownmount.ErrRootNotMount.Error()
}
