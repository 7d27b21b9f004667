package diag

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/caps"
	"github.com/nscheck/nscheck/internal/kconfig"
)

// Fix is what to run (or write) to remove one cause.
type Fix struct {
	// Commands are shell commands, each exactly as to be run.
	Commands []string `json:"commands,omitempty"`
	// File, when set, is a file to create with Content: before the
	// commands, or (Persist) to make their effect survive a reboot.
	File    string `json:"file,omitempty"`
	Content string `json:"content,omitempty"`
	Persist bool   `json:"persist,omitempty"`
	// Note says what the fix costs (a security trade-off) or where it applies.
	Note string `json:"note,omitempty"`
}

// Cause is why the kernel refused to create a namespace.
type Cause struct {
	// Text says why, naming the knob or option.
	Text string `json:"text"`
	// Knob is the sysctl, boot parameter or kernel option responsible;
	// "" when it cannot be pinned down.
	Knob string `json:"knob,omitempty"`
	// Fixes are alternatives, the first the recommended one.
	Fixes []Fix `json:"fixes,omitempty"`
}

// Reason renders the cause in one line with its first fix: what a skipped
// property says.
func (c Cause) Reason() string {
	s := c.Text
	if len(c.Fixes) > 0 {
		f := c.Fixes[0]
		cmds := strings.Join(f.Commands, " && ")
		switch {
		case f.File != "" && !f.Persist:
			s += ": write " + f.File + " (shown by `nscheck env`)"
			if cmds != "" {
				s += ", then " + cmds
			}
		case cmds != "":
			s += ": " + cmds
			if f.File != "" {
				s += " (persist in " + f.File + ")"
			}
		case f.Note != "":
			s += ": " + f.Note
		}
	}
	return s + "; see `nscheck env`"
}

// facts is what a cause is worked out from: cheap to gather (no probe).
type facts struct {
	knobs   map[string]Knob
	self    Self
	lsm     LSM
	cmdline Cmdline
	kernel  string // release
	config  *kconfig.Config
}

func (f *facts) knobInt(name string) (int64, bool) { return f.knobs[name].Int() }

// cause explains errno for a clone with namespace types typs; unpriv is
// true when the clone was made without privilege (through a new user
// namespace).
func (f *facts) cause(errno syscall.Errno, typs []string, unpriv bool) (Cause, bool) {
	what := "creating a " + strings.Join(typs, "+") + " namespace"
	switch errno {
	case unix.ENOSPC:
		return f.enospc(what, typs), true
	case unix.EUSERS:
		return Cause{
			Text:  what + " failed with EUSERS: the user namespace nesting limit (32 levels) is reached",
			Knob:  "user namespace depth",
			Fixes: []Fix{{Note: "run nscheck from a less deeply nested user namespace"}},
		}, true
	case unix.EINVAL:
		return f.einval(what, typs), true
	case unix.EACCES:
		return f.eacces(what), true
	case unix.EPERM:
		return f.eperm(what, typs, unpriv), true
	case unix.ENOSYS:
		// clone3 is the only way to ask for CLONE_NEWTIME at clone time.
		return Cause{
			Text:  what + " failed with ENOSYS: clone3(2) is refused here (a seccomp filter answers ENOSYS for it, as container engines' default profiles do, so that callers fall back to clone; or a kernel before 5.3), and nscheck needs it for this namespace",
			Knob:  "seccomp",
			Fixes: []Fix{{Note: "run nscheck outside the container, or with a seccomp profile that allows clone3 (docker run --security-opt seccomp=unconfined)"}},
		}, true
	}
	return Cause{}, false
}

func (f *facts) enospc(what string, typs []string) Cause {
	var zero []string
	for _, t := range typs {
		if n, ok := f.knobInt(maxKnob(t)); ok && n == 0 {
			zero = append(zero, maxKnob(t))
		}
	}
	where := "this user namespace"
	if f.self.InitialUserNS() {
		where = "the initial user namespace"
	}
	if len(zero) == 0 {
		var names []string
		for _, t := range typs {
			names = append(names, maxKnob(t))
		}
		return Cause{
			Text: what + " failed with ENOSPC: " + strings.Join(names, " or ") +
				" is reached here, or is 0 in an ancestor user namespace (not readable from here); for PID namespaces, the nesting limit of 32",
			Knob:  strings.Join(names, ", "),
			Fixes: []Fix{{Note: "raise the limit in the user namespace that set it (the container runtime's, or the host's: sysctl user.max_<type>_namespaces)"}},
		}
	}
	c := Cause{Text: fmt.Sprintf("%s is 0 in %s", strings.Join(zero, " and "), where), Knob: strings.Join(zero, ",")}
	fix := Fix{}
	var lines []string
	for _, k := range zero {
		v := f.defaultMax()
		fix.Commands = append(fix.Commands, fmt.Sprintf("sysctl -w %s=%d", k, v))
		lines = append(lines, fmt.Sprintf("%s = %d", k, v))
	}
	if f.self.InitialUserNS() {
		fix.File, fix.Content, fix.Persist = "/etc/sysctl.d/90-nscheck-namespaces.conf", strings.Join(lines, "\n")+"\n", true
		fix.Note = "then `sysctl --system` applies the file; 0 had been chosen to turn these namespaces off, so raise it only where they are wanted"
	} else {
		fix.Note = "the limit belongs to this user namespace: run the command in it with CAP_SYS_RESOURCE over it (as whoever created it: the container runtime or the parent), or from an ancestor namespace"
	}
	c.Fixes = []Fix{fix}
	return c
}

// defaultMax is a value to restore a max_*_namespaces limit to: the largest
// sibling limit (they start equal), else the kernel's default, threads-max/2.
func (f *facts) defaultMax() int64 {
	var best int64
	for name, k := range f.knobs {
		if strings.HasPrefix(name, "user.max_") && strings.HasSuffix(name, "_namespaces") {
			if n, ok := k.Int(); ok && n > best {
				best = n
			}
		}
	}
	if best > 0 {
		return best
	}
	if n, ok := f.knobInt(knobThreadsMax); ok && n/2 > 0 {
		return n / 2
	}
	return 15000
}

func (f *facts) einval(what string, typs []string) Cause {
	if f.config != nil {
		var off []kconfig.NSVerdict
		for _, t := range typs {
			if r, ok := kconfig.Rule(t); ok {
				if v := f.config.Namespace(r); !v.Available {
					off = append(off, v)
				}
			}
		}
		if len(off) > 0 {
			c := Cause{Text: off[0].Reason + " (" + f.config.Source + ")", Knob: off[0].Option}
			if len(off[0].Enable) > 0 {
				c.Fixes = []Fix{kernelOptionsFix(off[0].Enable)}
			} else {
				c.Fixes = []Fix{{Note: "boot a newer kernel"}}
			}
			return c
		}
	}
	if rhel7(f.kernel) && slices.Contains(typs, "user") && f.cmdline.Params["user_namespace.enable"] != "1" {
		return Cause{
			Text:  what + " failed with EINVAL: RHEL/CentOS 7 kernels ship user namespaces switched off (boot parameter user_namespace.enable=1 missing)",
			Knob:  "user_namespace.enable",
			Fixes: []Fix{grubbyFix()},
		}
	}
	text := what + " failed with EINVAL: this kernel lacks the namespace type"
	if f.config != nil {
		text += " although its config (" + f.config.Source + ") has it: the config is probably not this kernel's"
	}
	var enable []string
	for _, t := range typs {
		if r, ok := kconfig.Rule(t); ok && r.Option != "" {
			enable = append(enable, "CONFIG_"+r.Option+"=y")
		}
	}
	c := Cause{Text: text}
	if len(enable) > 0 {
		c.Knob = strings.TrimSuffix(enable[0], "=y")
		c.Fixes = []Fix{kernelOptionsFix(append([]string{"CONFIG_NAMESPACES=y"}, enable...))}
	}
	return c
}

func (f *facts) eacces(what string) Cause {
	restrict, ok := f.knobInt(knobAARestrict)
	known := ok && restrict != 0
	unknown := f.knobs[knobAARestrict].State == KnobUnreadable
	if !known && !unknown && f.lsm.AppArmor != "enabled" {
		return Cause{
			Text: what + " failed with EACCES: an LSM denies it (AppArmor's userns restriction is not active here; SELinux or a BPF LSM policy?)",
		}
	}
	text := what + " failed with EACCES: AppArmor restricts unprivileged user namespaces (" + knobAARestrict + "=1)"
	if !known {
		text = what + " failed with EACCES: AppArmor restricts unprivileged user namespaces (" + knobAARestrict + " is probably 1; it is readable by root only)"
	}
	return Cause{Text: text, Knob: knobAARestrict, Fixes: appArmorFixes()}
}

func (f *facts) eperm(what string, typs []string, unpriv bool) Cause {
	if f.self.Chrooted && slices.Contains(typs, "user") {
		return Cause{
			Text:  what + " failed with EPERM: nscheck runs in a chroot, and the kernel refuses a new user namespace to a chrooted process",
			Knob:  "chroot",
			Fixes: []Fix{{Note: "run nscheck outside the chroot, or in a container (runtimes pivot_root into the new root instead of chroot)"}},
		}
	}
	seccomp := Cause{
		Text:  what + " failed with EPERM: a seccomp filter denies it (Seccomp: filter; a container runtime's default profile blocks namespace flags)",
		Knob:  "seccomp",
		Fixes: []Fix{{Note: "run nscheck outside the container, or start the container with a profile that allows clone/unshare with namespace flags (docker run --security-opt seccomp=unconfined, or --privileged)"}},
	}
	if !unpriv {
		if !f.self.CapSysAdmin {
			return Cause{
				Text:  what + " failed with EPERM: nscheck lacks CAP_SYS_ADMIN",
				Knob:  "CAP_SYS_ADMIN",
				Fixes: []Fix{{Commands: []string{"sudo nscheck run"}, Note: "or run rootless: properties that work in a user namespace of their own still run"}},
			}
		}
		if c, ok := f.missingIDCaps(what, typs); ok {
			return c
		}
		if f.self.Seccomp == "filter" {
			return seccomp
		}
		return Cause{Text: what + " failed with EPERM although nscheck has CAP_SYS_ADMIN and no seccomp filter: an LSM policy (SELinux, a BPF LSM) denies it"}
	}
	if n, ok := f.knobInt(knobUnprivClone); ok && n == 0 {
		return Cause{
			Text: knobUnprivClone + " is 0: unprivileged user namespaces are disabled",
			Knob: knobUnprivClone,
			Fixes: []Fix{{
				Commands: []string{"sysctl -w " + knobUnprivClone + "=1"},
				File:     "/etc/sysctl.d/90-nscheck-userns.conf",
				Content:  knobUnprivClone + " = 1\n",
				Persist:  true,
				Note:     "then `sysctl --system`; this lets every local user create user namespaces (more kernel attack surface)",
			}},
		}
	}
	if rhel7(f.kernel) && f.cmdline.Params["namespace.unpriv_enable"] != "1" {
		return Cause{
			Text:  what + " failed with EPERM: RHEL/CentOS 7 kernels deny unprivileged namespaces unless booted with namespace.unpriv_enable=1",
			Knob:  "namespace.unpriv_enable",
			Fixes: []Fix{grubbyFix()},
		}
	}
	if f.self.Seccomp == "filter" {
		return seccomp
	}
	if r, ok := f.knobInt(knobAARestrict); ok && r != 0 {
		return Cause{Text: what + " failed with EPERM under AppArmor's userns restriction", Knob: knobAARestrict, Fixes: appArmorFixes()}
	}
	return Cause{Text: what + " failed with EPERM without privilege: a distro policy or LSM denies unprivileged namespaces (in a chroot, or an id not mapped in this user namespace, also give EPERM)"}
}

// idCaps are what root needs to give a helper a user namespace with id
// maps written by its parent (CAP_SETUID, CAP_SETGID; CAP_SETFCAP to map
// root, since Linux 5.12) or to start it as another user.
var idCaps = []caps.Cap{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SETFCAP}

// missingIDCaps explains an EPERM met by root creating a user namespace
// (typs holds "user") or switching a helper to another user (typs empty) by
// the capabilities of idCaps that nscheck lacks.
func (f *facts) missingIDCaps(what string, typs []string) (Cause, bool) {
	if len(typs) > 0 && !slices.Contains(typs, "user") {
		return Cause{}, false
	}
	s, err := caps.Self()
	if err != nil {
		return Cause{}, false
	}
	var missing, flags []string
	for _, c := range idCaps {
		if !s.Effective.Has(c) || !s.Bounding.Has(c) {
			missing = append(missing, c.String())
			flags = append(flags, "-"+c.Flag())
		}
	}
	if len(missing) == 0 {
		return Cause{}, false
	}
	if len(typs) == 0 {
		what = "starting a helper as another user"
	}
	where := "the initial user namespace"
	if !f.self.InitialUserNS() {
		where = "nscheck's user namespace"
	}
	return Cause{
		Text:  fmt.Sprintf("%s failed with EPERM: nscheck lacks %s (in %s), which writing a helper's uid_map and gid_map (or switching its user) needs", what, strings.Join(missing, ", "), where),
		Knob:  strings.Join(missing, ","),
		Fixes: []Fix{{Note: fmt.Sprintf("run nscheck with %s: do not drop them (setpriv --bounding-set=%s), or add them to the container (docker run --cap-add ...)", strings.Join(missing, ", "), strings.Join(flags, ","))}},
	}, true
}

func kernelOptionsFix(enable []string) Fix {
	return Fix{
		Commands: []string{kconfig.EnableCommand(enable)},
		Note:     "in the kernel source tree, then rebuild and boot the kernel; the options: " + strings.Join(enable, " "),
	}
}

func grubbyFix() Fix {
	return Fix{
		Commands: []string{
			`grubby --args="user_namespace.enable=1" --update-kernel="$(grubby --default-kernel)"`,
			`grubby --args="namespace.unpriv_enable=1" --update-kernel="$(grubby --default-kernel)"`,
			"echo 'user.max_user_namespaces = 15000' > /etc/sysctl.d/90-nscheck-userns.conf",
			"reboot",
		},
		Note: "CentOS/RHEL 7 only (3.10 kernels); namespace.unpriv_enable=1 is needed only for unprivileged use",
	}
}

// appArmorProfile lets one binary create user namespaces under Ubuntu's
// restriction; %s is the binary's absolute path.
const appArmorProfile = `abi <abi/4.0>,
include <tunables/global>

profile nscheck %s flags=(unconfined) {
  userns,

  include if exists <local/nscheck>
}
`

func appArmorFixes() []Fix {
	exe, err := os.Executable()
	if err != nil || strings.HasPrefix(exe, os.TempDir()) {
		exe = "/usr/local/bin/nscheck"
	}
	return []Fix{
		{
			File:     "/etc/apparmor.d/nscheck",
			Content:  fmt.Sprintf(appArmorProfile, exe),
			Commands: []string{"apparmor_parser -r /etc/apparmor.d/nscheck"},
			Note:     "allows user namespaces for this one binary only: the restriction stays for everything else (recommended)",
		},
		{
			Commands: []string{"sysctl -w " + knobAARestrict + "=0"},
			File:     "/etc/sysctl.d/90-nscheck-userns.conf",
			Content:  knobAARestrict + " = 0\n",
			Persist:  true,
			Note:     "the global switch: every program may create unprivileged user namespaces again, reopening the kernel attack surface the restriction closes",
		},
	}
}

// rhel7 recognises a RHEL/CentOS 7 kernel release ("3.10.0-1160.el7.x86_64").
func rhel7(release string) bool {
	return strings.HasPrefix(release, "3.10.") && strings.Contains(release, ".el7")
}

// errnoString names an errno ("ENOSPC"), or its number.
func errnoString(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return strconv.Itoa(int(e))
}
