package prop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/caps"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/forkchain"
)

// A Premise is what must hold for a property's check to mean anything: a
// capability its helpers use, a kernel feature, a policy knob, a state of
// the file systems. It is not what the property asserts. A premise that does
// not hold makes the property skipped, with a reason that names the missing
// thing and the fix; only an isolation expectation contradicted by evidence
// is a leak.
//
// Premises are probed before the check, the same way by `nscheck run` and
// by `nscheck env` (Predict), so that env says in advance which properties
// a run will skip, and why. A probe is a fact of the environment, not of a
// property: each Key is probed once per process.
type Premise struct {
	// Key names the fact ("cap:CAP_SYS_TIME", "clone:CLONE_NEWNET"):
	// properties that share a premise share its probe.
	Key string
	// Why says what the check needs it for ("writing timens_offsets").
	Why string
	// Probe returns nil when the premise holds, an *UnmetError when it
	// does not, and any other error when it could not be probed (a harness
	// error).
	Probe func(ctx context.Context) error
}

// UnmetError is a premise that does not hold. A check may also return one
// (wrapped or not) when it meets an unmet premise only while it runs; the
// property is then skipped, as for a premise probed in advance.
type UnmetError struct {
	// Cause names precisely what is missing: the capability and the set
	// and user namespace it is missing from, the kernel option or module,
	// the knob and its value.
	Cause string
	// Fix is what to do about it, as exactly as can be said.
	Fix string
	// Why is the Why of the premise, filled in when it is probed.
	Why string
}

// Unmet makes an UnmetError.
func Unmet(cause, fix string) *UnmetError { return &UnmetError{Cause: cause, Fix: fix} }

func (e *UnmetError) Error() string { return e.Reason() }

// Reason is the skip reason: the cause, what needs it, the fix.
func (e *UnmetError) Reason() string {
	s := e.Cause
	if e.Why != "" {
		s += " (needed for " + e.Why + ")"
	}
	if e.Fix != "" {
		s += "; fix: " + e.Fix
	}
	return s
}

type probed struct {
	once sync.Once
	err  error
}

var (
	probesMu sync.Mutex
	probes   = map[string]*probed{}
)

// Holds probes the premise once per process and returns its verdict: nil,
// an *UnmetError (with Why set), or the error of a probe that failed.
func (pr Premise) Holds(ctx context.Context) error {
	probesMu.Lock()
	r := probes[pr.Key]
	if r == nil {
		r = &probed{}
		probes[pr.Key] = r
	}
	probesMu.Unlock()
	r.once.Do(func() {
		r.err = pr.Probe(ctx)
		if skip := (*SkipError)(nil); errors.As(r.err, &skip) {
			r.err = Unmet(skip.Reason, "")
		}
	})
	var u *UnmetError
	if errors.As(r.err, &u) {
		withWhy := *u
		withWhy.Why = pr.Why
		return &withWhy
	}
	if r.err != nil {
		return fmt.Errorf("probe %s: %w", pr.Key, r.err)
	}
	return nil
}

// ForgetProbes drops the cached probes (tests that change the environment
// between runs in one process).
func ForgetProbes() {
	probesMu.Lock()
	probes = map[string]*probed{}
	probesMu.Unlock()
}

// AllPremises are the property's premises in the order they are probed:
// a /proc of nscheck's own (OwnProc), root for a root-only property, then
// the namespaces its check creates, then its own, then its control's
// sandbox.
func (p *Property) AllPremises() []Premise {
	out := []Premise{OwnProc}
	if p.Needs == NeedRoot {
		out = append(out, rootPremise)
	}
	if p.Flag != 0 {
		out = append(out, Creates(p.Flag, "the namespace under test"))
	}
	out = append(out, p.Premises...)
	if p.NoControl == "" {
		out = append(out, ControlSandbox(p.Flag))
	}
	return out
}

// CheckPremises probes the property's premises in order and returns the
// first that does not hold (an *UnmetError) or could not be probed.
func (p *Property) CheckPremises(ctx context.Context) error {
	for _, pr := range p.AllPremises() {
		if err := pr.Holds(ctx); err != nil {
			return err
		}
	}
	return nil
}

// UserNSName says which user namespace this process is in, as the cause
// of an unmet premise names it.
func UserNSName() string {
	if InInitialUserNS() {
		return "the initial user namespace"
	}
	return "nscheck's user namespace (not the initial one)"
}

// Capability is the premise that the check's helpers hold a capability
// (unix.CAP_*):
// it must be in nscheck's bounding set (helpers exec, and the bounding set
// caps what an exec gives, in a new user namespace too), and in its
// effective set when nscheck runs as root (the observer acts itself).
func Capability(capability int, why string) Premise {
	c := caps.Cap(capability)
	return Premise{Key: "cap:" + c.String(), Why: why, Probe: func(context.Context) error {
		s, err := caps.Self()
		if err != nil {
			return err
		}
		fix := fmt.Sprintf("give nscheck %s: do not drop it (setpriv --bounding-set=-%s, capsh --drop), or add it to the container (docker run --cap-add %s)",
			c, c.Flag(), strings.TrimPrefix(c.String(), "CAP_"))
		if !s.Bounding.Has(c) {
			return Unmet(fmt.Sprintf("%s is not in nscheck's bounding set (in %s), so no helper can have it", c, UserNSName()), fix)
		}
		if Capable() && !s.Effective.Has(c) {
			return Unmet(fmt.Sprintf("%s is not in nscheck's effective set (in %s)", c, UserNSName()), fix)
		}
		return nil
	}}
}

// AsRoot narrows a premise to runs as root (Capable): rootless, helpers get
// a user namespace of their own and the premise does not apply. Mapping
// root into a user namespace, say, takes CAP_SETFCAP only when it is the
// host's root that is mapped.
func (pr Premise) AsRoot() Premise {
	probe := pr.Probe
	pr.Key = "as-root:" + pr.Key
	pr.Probe = func(ctx context.Context) error {
		if !Capable() {
			return nil
		}
		return probe(ctx)
	}
	return pr
}

// rootPremise is what NeedRoot means.
var rootPremise = Premise{Key: "root", Probe: func(context.Context) error {
	if IsRoot() {
		return nil
	}
	s, _ := caps.Self()
	switch {
	case !InInitialUserNS():
		return Unmet("nscheck is not in the initial user namespace (a container's or unshare's root is not the host's): this property needs CAP_SYS_ADMIN in the initial user namespace",
			"run nscheck on the host, or in a container that shares the host's user namespace")
	case os.Geteuid() == 0 && s.Bounding.Has(unix.CAP_SYS_ADMIN):
		return Unmet("CAP_SYS_ADMIN is not in nscheck's effective set (in the initial user namespace)", "run nscheck as root with its full capabilities")
	case os.Geteuid() == 0:
		return Unmet("CAP_SYS_ADMIN is not in nscheck's bounding set (in the initial user namespace)",
			"give nscheck CAP_SYS_ADMIN: do not drop it (setpriv --bounding-set=-sys_admin), or add it to the container (docker run --cap-add SYS_ADMIN)")
	}
	return Unmet("nscheck does not run as root: this property needs CAP_SYS_ADMIN in the initial user namespace", "run nscheck as root (sudo nscheck run)")
}}

// noopAction answers at once: what a Creates probe spawns.
const noopAction = "prop.noop"

func init() {
	helper.Handle(noopAction, func(struct{}) (any, error) { return struct{}{}, nil })
}

// nestedAction tries, inside the helper's own user namespace, to create
// another one: what NestedUserNS probes.
const nestedAction = "prop.nested-userns"

func init() {
	helper.Handle(nestedAction, func(struct{}) (any, error) {
		return errname.Of(forkchain.Try(unix.CLONE_NEWUSER, helper.DefaultTimeout)), nil
	})
}

// NestedUserNS is the premise that a user namespace can be created inside
// a user namespace: Debian's kernel.unprivileged_userns_clone=0 refuses it
// (EPERM: root of a user namespace is unprivileged for it), and so do LSM
// policies that confine user namespaces. Checks that nest user namespaces
// would otherwise read the policy's refusal as a broken limit.
func NestedUserNS(why string) Premise {
	return Premise{Key: "nested-userns", Why: why, Probe: func(ctx context.Context) error {
		s := helper.Spec{Action: nestedAction, Cloneflags: unix.CLONE_NEWUSER}
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
		var got string
		if err := helper.Run(ctx, s, &got); err != nil {
			if se, ok := helper.Refused(err); ok {
				if reason := ExplainStart(se); reason != "" {
					return Unmet(reason, "")
				}
			}
			return err
		}
		if got == errname.OK {
			return nil
		}
		const knob = "kernel.unprivileged_userns_clone"
		if v, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(v)) == "0" {
			return Unmet(fmt.Sprintf("creating a user namespace inside a user namespace failed (%s): %s is 0, and root of a user namespace is not privileged for it", got, knob),
				"sysctl -w "+knob+"=1 (persist it in /etc/sysctl.d/)")
		}
		return Unmet(fmt.Sprintf("creating a user namespace inside a user namespace failed (%s): a policy refuses nested user namespaces (an LSM, a distro's userns restriction)", got),
			"see `nscheck env`; allow user namespaces for nscheck")
	}}
}

// Creates is the premise that the kernel lets this process create the
// namespaces of flags the way a trial's helpers get them (rootless, in a
// user namespace of their own). It probes by spawning a helper that
// answers at once; a refusal is explained as ExplainStart explains it.
func Creates(flags uintptr, why string) Premise {
	return Premise{Key: "clone:" + helper.FlagNames(flags), Why: why, Probe: func(ctx context.Context) error {
		s := helper.Spec{Action: noopAction, Cloneflags: flags}
		if flags&unix.CLONE_NEWUSER != 0 {
			// As checks give a user namespace: root mapped to the caller.
			s.UIDMappings, s.GIDMappings = helper.RootMapping()
		}
		return RunProbe(ctx, s, nil)
	}}
}

// RunProbe runs the helper of a premise's probe the way a check's helpers
// run (Trial.Flags: in a user namespace of its own when rootless) and
// decodes its facts into out. A refusal to create its namespaces is an
// *UnmetError explained as ExplainStart explains it.
func RunProbe(ctx context.Context, s helper.Spec, out any) error {
	t := newTrial(ctx, &Property{}, true, !Capable(), false)
	t.Flags(&s)
	err := helper.Run(ctx, s, out)
	if err == nil {
		return nil
	}
	if se, ok := helper.Refused(err); ok {
		if reason := ExplainStart(se); reason != "" {
			return Unmet(reason, "")
		}
	}
	return err
}
