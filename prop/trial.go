package prop

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
)

// Observation is what one run of a check saw.
type Observation struct {
	// Evidence holds what was seen inside the helpers and on the observer's
	// side ("host"), keyed "inside" and "host" and then by fact.
	Evidence map[string]map[string]any `json:"evidence"`
	// Leaks lists every expectation that did not hold, in words.
	Leaks []string `json:"leaks,omitempty"`
}

// Trial is one run of a check, real or control.
type Trial struct {
	Prop *Property
	// Isolated is false in the control: the namespace under test is
	// withheld from every helper the check spawns.
	Isolated bool
	// Rootless is true when this process lacks CAP_SYS_ADMIN (see Capable):
	// helpers then get a user namespace of their own.
	Rootless bool
	// Sandboxed is true when the observer is the control's sandbox, already
	// root in a user namespace of its own when rootless.
	Sandboxed bool

	ctx      context.Context
	obs      Observation
	cleanups []func()
}

func newTrial(ctx context.Context, p *Property, isolated, rootless, sandboxed bool) *Trial {
	return &Trial{
		Prop: p, Isolated: isolated, Rootless: rootless, Sandboxed: sandboxed, ctx: ctx,
		obs: Observation{Evidence: map[string]map[string]any{}},
	}
}

// Context bounds the trial.
func (t *Trial) Context() context.Context { return t.ctx }

// Flags returns the clone flags a helper of this trial gets for the flags
// the check asks for: without the flag under test in a control (and without
// id maps when that leaves no user namespace), plus a user namespace mapping
// root to the caller when the run is rootless.
func (t *Trial) Flags(s *helper.Spec) {
	if !t.Isolated {
		s.Cloneflags &^= t.Prop.Flag
		if s.Cloneflags&unix.CLONE_NEWUSER == 0 {
			// Withheld user namespace: nothing to map (writing the maps
			// of a process in the caller's namespace fails).
			s.UIDMappings, s.GIDMappings = nil, nil
		}
	}
	if t.Rootless && !t.Sandboxed && s.Cloneflags != 0 && s.Cloneflags&unix.CLONE_NEWUSER == 0 && s.Credential == nil {
		s.Cloneflags |= unix.CLONE_NEWUSER
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
}

// Start starts a helper as the trial says (see Flags); it is released when
// the trial ends, or earlier by the caller.
func (t *Trial) Start(s helper.Spec) (*helper.Process, error) {
	t.Flags(&s)
	p, err := helper.Start(t.ctx, s)
	if p != nil {
		t.Defer(func() { _ = p.Release() })
	}
	return p, err
}

// Spawn starts a helper as the trial says (see Flags) without waiting for
// its reply (see helper.Spawn: a handshake, a go-ahead, the wait status);
// it is killed and reaped when the trial ends, or earlier by the caller.
func (t *Trial) Spawn(s helper.Spec) (*helper.Process, error) {
	t.Flags(&s)
	p, err := helper.Spawn(t.ctx, s)
	if p != nil {
		t.Defer(p.Close)
	}
	return p, err
}

// Nested returns the clone flags for a helper that a helper of this trial
// starts itself: the flag under test is withheld in a control, and no user
// namespace is added (the parent helper is already root in its own).
func (t *Trial) Nested(flags uintptr) uintptr {
	if !t.Isolated {
		flags &^= t.Prop.Flag
	}
	return flags
}

// Forbidden is the namespace of typ that the helpers of this trial must
// never act in, whatever they asked for (nsguard.Refuse): the observer's
// own in the real run, which is the host; none in a control, whose
// observer is the disposable sandbox and the designated victim.
func (t *Trial) Forbidden(typ string) (nsfs.ID, error) {
	if t.Sandboxed {
		return nsfs.ID{}, nil
	}
	return nsfs.Of(0, typ)
}

// Run runs a one-shot helper as the trial says and decodes its facts.
func (t *Trial) Run(s helper.Spec, out any) error {
	t.Flags(&s)
	return helper.Run(t.ctx, s, out)
}

// Defer runs fn when the trial ends (last in, first out).
func (t *Trial) Defer(fn func()) { t.cleanups = append(t.cleanups, fn) }

// ScratchDir makes an empty directory of the scratch space (ScratchDir)
// for this trial and removes it when the trial ends. The removal is
// os.Remove, never recursive: a directory that a leaked mount still
// covers is left for the host guard to report, not emptied.
func (t *Trial) ScratchDir(prefix string) (string, error) {
	dir, err := ScratchDir(prefix)
	if err != nil {
		return "", err
	}
	t.Defer(func() { _ = os.Remove(dir) })
	return dir, nil
}

func (t *Trial) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

// Inside records a fact the helper saw.
func (t *Trial) Inside(key string, v any) { t.record("inside", key, v) }

// Host records a fact the observer saw.
func (t *Trial) Host(key string, v any) { t.record("host", key, v) }

func (t *Trial) record(side, key string, v any) {
	m := t.obs.Evidence[side]
	if m == nil {
		m = map[string]any{}
		t.obs.Evidence[side] = m
	}
	m[key] = v
}

// Expect records a leak, described by format, when ok is false. It returns ok.
func (t *Trial) Expect(ok bool, format string, args ...any) bool {
	if !ok {
		t.obs.Leaks = append(t.obs.Leaks, fmt.Sprintf(format, args...))
	}
	return ok
}

// Observation is what the trial has seen so far.
func (t *Trial) Observation() Observation { return t.obs }

// IsRoot reports whether this process has CAP_SYS_ADMIN in the initial user
// namespace: what root-only properties need. Root of a container's user
// namespace is not root of the host.
func IsRoot() bool { return Capable() && InInitialUserNS() }

// Capable reports whether this process can create namespaces without a user
// namespace of its own: euid 0 with CAP_SYS_ADMIN in its effective set (in
// whichever user namespace it is).
func Capable() bool {
	if os.Geteuid() != 0 {
		return false
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// InInitialUserNS reports whether this process is in the initial user
// namespace, whose uid_map is the single full identity line "0 0 4294967295".
func InInitialUserNS() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return slices.Equal(strings.Fields(string(data)), []string{"0", "0", "4294967295"})
}

// NamePrefix begins the names of the objects checks create where the host
// could see them if something went wrong (the transient cgroups under the
// observer's own).
const NamePrefix = "nscheck-"

// RunNamePrefix is NamePrefix followed by this run's tag (helper.RunTag,
// which helpers inherit): the host guard lists the objects of this run by
// it, not those of another run going on beside it (test packages run in
// parallel, fleets run nscheck from several jobs at once).
func RunNamePrefix() string { return NamePrefix + helper.RunTag() + "-" }

// UniqueName returns prefix followed by 8 random hex digits: names of the
// objects a check creates never collide with the host's or another run's.
// They need to be unique, not secret: math/rand/v2's generator, seeded from
// the kernel's entropy in every process, gives that without crypto/rand,
// whose FIPS 140 module every helper would otherwise initialise at start.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s%08x", prefix, rand.Uint32())
}
