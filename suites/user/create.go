package user

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/forkchain"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

func init() {
	helper.Handle("user.create-as", createAs)
	helper.Handle("user.nest", nest)
}

// withheld is flags as a helper that a helper starts gets them in this
// trial: the control withholds the flag under test there too.
func withheld(t *prop.Trial, flags uintptr) uintptr {
	if !t.Isolated {
		flags &^= t.Prop.Flag
	}
	return flags
}

// childSpec is a nested helper's spec: flags, plus root mapped to the
// caller's own ids when they include a user namespace.
func childSpec(action string, args any, flags uintptr) helper.Spec {
	s := helper.Spec{Action: action, Args: args, Cloneflags: flags}
	if flags&unix.CLONE_NEWUSER != 0 {
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	return s
}

// startRefusal turns the kernel's refusal to clone into facts (errno and
// text); any other error stays an error.
func startRefusal(err error) (errno int, text string, _ error) {
	var se *helper.StartError
	if !errors.As(err, &se) {
		return 0, "", err
	}
	return int(helper.Errno(err)), err.Error(), nil
}

// --- user.unprivileged-create ---------------------------------------------

// unprivileged is the uid and gid the check drops to: nobody.
const unprivileged = 65534

var _ = prop.Register(prop.Property{
	ID:    "user.unprivileged-create",
	Title: "a non-root uid (65534) can create a user namespace, and UTS and IPC namespaces inside it",
	// Dropping to another uid needs root; the knobs that disable
	// unprivileged user namespaces become skips that name them.
	Needs: prop.NeedRoot,
	Flag:  unix.CLONE_NEWUSER,
	Premises: []prop.Premise{
		prop.Capability(unix.CAP_SETUID, "starting a helper as uid 65534"),
		prop.Capability(unix.CAP_SETGID, "starting a helper as gid 65534"),
		userNSPolicy,
	},
	Check: unprivilegedCreate,
})

type createFacts struct {
	UID    int                `json:"uid"`
	CapEff uint64             `json:"cap_eff"`
	Own    map[string]nsfs.ID `json:"own"`
	// Errno and Err tell why clone refused the child, if it did.
	Errno int                `json:"errno,omitempty"`
	Err   string             `json:"error,omitempty"`
	Child *probeFacts        `json:"child,omitempty"`
	Seen  map[string]nsfs.ID `json:"seen,omitempty"`
}

var createTypes = []string{"user", "uts", "ipc"}

// createAs runs as the unprivileged uid: it clones a child with flags and
// compares the child's namespaces with its own.
func createAs(flags uintptr) (any, error) {
	f := createFacts{UID: os.Getuid(), Own: map[string]nsfs.ID{}, Seen: map[string]nsfs.ID{}}
	var err error
	if f.CapEff, _, err = ownCaps(); err != nil {
		return nil, err
	}
	s := childSpec("user.probe", probeArgs{SetHostname: true}, flags)
	s.Hold = true
	p, err := helper.Start(context.Background(), s)
	if p == nil {
		f.Errno, f.Err, err = startRefusal(err)
		return f, err
	}
	defer p.Release()
	if err != nil {
		return nil, err
	}
	f.Child = &probeFacts{}
	if err := p.Facts(f.Child); err != nil {
		return nil, err
	}
	for _, typ := range createTypes {
		if f.Own[typ], err = nsfs.Of(0, typ); err != nil {
			return nil, err
		}
		if f.Seen[typ], err = nsfs.Of(p.PID(), typ); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func unprivilegedCreate(t *prop.Trial) error {
	full, err := fullCaps()
	if err != nil {
		return err
	}
	var f createFacts
	err = t.Run(helper.Spec{
		Action: "user.create-as",
		Args:   withheld(t, unix.CLONE_NEWUSER|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC),
		// The sandbox's user namespace denies setgroups, as every
		// unprivileged one does; there the groups are its own anyway.
		Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged, NoSetGroups: t.Sandboxed},
	}, &f)
	if err != nil {
		return err
	}
	knob := readKnobs(t)
	t.Inside("dropped to uid", f.UID)
	t.Inside("dropped CapEff", fmt.Sprintf("%#x", f.CapEff))
	t.Expect(f.UID == unprivileged && f.CapEff == 0, "the helper did not drop to uid %d without capabilities (uid %d, CapEff %#x)", unprivileged, f.UID, f.CapEff)
	if f.Err != "" {
		t.Inside("clone", f.Err)
		if knob != "" {
			return prop.Skip("unprivileged user namespaces are disabled here (%s): %s", f.Err, knob)
		}
		if !t.Isolated {
			// The control: without the user namespace the clone must fail.
			t.Expect(false, "uid %d could not create UTS and IPC namespaces without a user namespace: %s", unprivileged, f.Err)
			return nil
		}
		return prop.Skip("uid %d could not create a user namespace with UTS and IPC namespaces inside (%s) and no sysctl disables them here, so a seccomp filter (%s) or an LSM denies it; see `nscheck env`", unprivileged, f.Err, seccompMode())
	}
	c := f.Child
	t.Inside("child uid", c.UID)
	t.Inside("child CapEff", fmt.Sprintf("%#x", c.CapEff))
	t.Inside("child sethostname(own name)", c.SetHostname)
	t.Expect(c.UID == 0 && c.CapEff == full, "the child is not root with every capability in its user namespace (uid %d, CapEff %#x)", c.UID, c.CapEff)
	t.Expect(c.SetErrno == 0, "the child cannot set the hostname of its own UTS namespace: %s", c.SetHostname)
	for _, typ := range createTypes {
		t.Inside("creator ns/"+typ, f.Own[typ].String())
		t.Inside("child ns/"+typ, f.Seen[typ].String())
		t.Expect(f.Seen[typ] != f.Own[typ], "the child shares its creator's %s namespace %s", typ, f.Own[typ])
	}
	return nil
}

type policyKnob struct{ name, off, fix string }

// policyKnobs are the sysctls that disable unprivileged user namespaces:
// the value that does, and the fix.
var policyKnobs = []policyKnob{
	{"kernel.unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"},
	{"user.max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"},
	{"kernel.apparmor_restrict_unprivileged_userns", "1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile granting userns to this binary"},
}

// userNSPolicy is the premise that no policy knob disables unprivileged
// user namespaces: with one off the check can only confirm the policy, so
// it is a skip naming the knob (and `nscheck env` predicts it).
var userNSPolicy = prop.Premise{
	Key: "unprivileged-userns-policy",
	Why: "a non-root uid creating a user namespace",
	Probe: func(context.Context) error {
		if _, disabledBy := knobValues(); disabledBy != nil {
			return prop.Unmet(fmt.Sprintf("unprivileged user namespaces are disabled here: %s = %s", disabledBy.name, disabledBy.off), disabledBy.fix)
		}
		return nil
	},
}

// knobValues reads the policy knobs as the host has them ("absent" where
// this kernel lacks one) and names the first that disables unprivileged
// user namespaces here, or nil when none does.
func knobValues() (values map[string]string, disabledBy *policyKnob) {
	values = map[string]string{}
	for i, k := range policyKnobs {
		data, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k.name, ".", "/"))
		v := strings.TrimSpace(string(data))
		if err != nil {
			v = "absent"
		}
		values[k.name] = v
		if v == k.off && disabledBy == nil {
			disabledBy = &policyKnobs[i]
		}
	}
	return values, disabledBy
}

// readKnobs records the policy knobs as the host has them and names the
// one that disables unprivileged user namespaces here, with its fix, or ""
// when none does.
func readKnobs(t *prop.Trial) string {
	values, disabledBy := knobValues()
	for _, k := range policyKnobs {
		t.Host(k.name, values[k.name])
	}
	if disabledBy == nil {
		return ""
	}
	return fmt.Sprintf("%s = %s; enable with %s", disabledBy.name, disabledBy.off, disabledBy.fix)
}

// --- user.nesting-limit ---------------------------------------------------

// The kernel refuses a user namespace whose parent is at level 33 or deeper
// (the initial one is level 0): 33 nest below the initial namespace and the
// 34th fails, with ENOSPC since Linux 4.9 and EUSERS before.
const (
	maxUserNSLevel = 33
	// chainLength is how deep the chain tries: past any possible limit.
	chainLength = maxUserNSLevel + 1
	// initUserNSIno is the nsfs inode of the initial user namespace
	// (PROC_USER_INIT_INO), the same on every kernel.
	initUserNSIno = 0xEFFFFFFD
)

var _ = prop.Register(prop.Property{
	ID:       "user.nesting-limit",
	Title:    "user namespaces nest 33 deep below the initial one; creating one more fails (ENOSPC, EUSERS before Linux 4.9)",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWUSER,
	Premises: []prop.Premise{prop.Capability(unix.CAP_SETFCAP, "mapping root into nested user namespaces").AsRoot(), prop.NestedUserNS("nesting user namespaces to the limit")},
	Check:    nestingLimit,
})

type nestArgs struct {
	Flags uintptr `json:"flags"`
	Left  int     `json:"left"`
}

type nestFacts struct {
	// Created counts the levels created below the helper that answers.
	Created int    `json:"created"`
	Errno   int    `json:"errno,omitempty"`
	Err     string `json:"error,omitempty"`
	// Shared: a level was in its parent's user namespace (not nested).
	Shared bool `json:"shared,omitempty"`
}

// nest builds the chain below the helper with raw clones, each level
// mapping its own ids (internal/forkchain: a helper exec per level would
// cost 34 Go start-ups).
func nest(a nestArgs) (any, error) {
	r, err := forkchain.Run(forkchain.Spec{Flags: a.Flags, Levels: a.Left, NSType: "user", Timeout: helper.DefaultTimeout})
	if err != nil {
		return nil, err
	}
	f := nestFacts{Created: r.Created, Shared: r.Shared}
	if r.Errno != 0 {
		if r.Step != forkchain.StepClone {
			return nil, fmt.Errorf("level %d: %s: %w", r.Created+1, r.Step, r.Errno)
		}
		f.Errno, f.Err = int(r.Errno), (&helper.StartError{Flags: a.Flags, Err: r.Errno}).Error()
	}
	return f, nil
}

func nestingLimit(t *prop.Trial) error {
	own, err := nsfs.Of(0, "user")
	if err != nil {
		return err
	}
	// A plain helper starts the chain, so that every level is created by
	// the same code, the first one included.
	var f nestFacts
	err = t.Run(helper.Spec{Action: "user.nest", Args: nestArgs{Flags: withheld(t, unix.CLONE_NEWUSER), Left: chainLength}, Timeout: 2 * helper.DefaultTimeout}, &f)
	if err != nil {
		return err
	}
	if f.Created == 0 && f.Errno != 0 {
		// Not even one level: the environment refuses user namespaces.
		return &helper.StartError{Flags: unix.CLONE_NEWUSER, Err: unix.Errno(f.Errno)}
	}
	initial := own.Ino == initUserNSIno
	t.Host("own ns/user", own.String())
	t.Host("in the initial user namespace", initial)
	t.Inside("levels created", f.Created)
	t.Inside("next level", f.Err)
	t.Inside("a level shares its parent's user namespace", f.Shared)
	t.Expect(!f.Shared, "level %d is in its parent's user namespace: the chain does not nest", f.Created+1)
	if !t.Expect(f.Errno != 0, "%d nested levels were created without reaching the user namespace limit", f.Created) {
		return nil
	}
	errno := unix.Errno(f.Errno)
	if errno == unix.EPERM || errno == unix.EACCES {
		// A policy's refusal, not the limit the property is about.
		return prop.Unmet(fmt.Sprintf("the chain of nested user namespaces stopped after %d levels with %v: a policy (a sysctl, an LSM) refuses nested user namespaces before the kernel's nesting limit", f.Created, errno),
			"see `nscheck env`; allow user namespaces for nscheck")
	}
	t.Expect(errno == unix.ENOSPC || errno == unix.EUSERS, "the chain stopped after %d levels with %v, not the nesting limit's ENOSPC (EUSERS)", f.Created, errno)
	if initial {
		t.Expect(f.Created == maxUserNSLevel, "from the initial user namespace %d levels nested, not %d", f.Created, maxUserNSLevel)
	} else {
		// The observer's own depth is hidden from it (NS_GET_PARENT
		// stops at its own namespace): only a bound holds.
		t.Expect(f.Created < maxUserNSLevel, "%d levels nested below a non-initial user namespace: more than the kernel allows", f.Created)
	}
	return nil
}

// seccompMode reads this process's seccomp mode from /proc/self/status.
func seccompMode() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "seccomp mode unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return "Seccomp: " + strings.TrimSpace(v) + " in /proc/self/status"
		}
	}
	return "no Seccomp line in /proc/self/status"
}
