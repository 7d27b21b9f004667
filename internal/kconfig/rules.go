package kconfig

import (
	"fmt"
	"strings"
)

// NSRule says what a namespace type needs from a kernel config.
type NSRule struct {
	// Type is the namespace type as in /proc/<pid>/ns ("uts").
	Type string
	// Option is the type's own option without CONFIG_ ("UTS_NS"); "" for
	// mount and cgroup namespaces, which have none.
	Option string
	// Requires are further options that must be on ("NAMESPACES", "CGROUPS").
	Requires []string
	// Since is the first kernel version (major, minor) with the type; zero
	// for types older than any kernel nscheck can meet.
	Since [2]int
}

// NSRules lists the eight namespace types in the order nscheck reports them.
var NSRules = []NSRule{
	{Type: "mnt"},
	{Type: "uts", Option: "UTS_NS", Requires: []string{"NAMESPACES"}},
	{Type: "ipc", Option: "IPC_NS", Requires: []string{"NAMESPACES"}},
	{Type: "pid", Option: "PID_NS", Requires: []string{"NAMESPACES"}},
	{Type: "net", Option: "NET_NS", Requires: []string{"NAMESPACES"}},
	{Type: "user", Option: "USER_NS", Requires: []string{"NAMESPACES"}},
	{Type: "cgroup", Requires: []string{"CGROUPS"}, Since: [2]int{4, 6}},
	{Type: "time", Option: "TIME_NS", Requires: []string{"NAMESPACES"}, Since: [2]int{5, 6}},
}

// Rule finds the rule of a namespace type.
func Rule(typ string) (NSRule, bool) {
	for _, r := range NSRules {
		if r.Type == typ {
			return r, true
		}
	}
	return NSRule{}, false
}

// NSVerdict is what a config says about one namespace type.
type NSVerdict struct {
	Type string `json:"type"`
	// Option is "CONFIG_UTS_NS", or "" for mnt and cgroup.
	Option string `json:"option,omitempty"`
	// State is the option's state (built-in, module, absent); for a type
	// without an option, the state of what it requires.
	State     string `json:"state"`
	Available bool   `json:"available"`
	// Reason says why, in words, when the type is not available (or how it
	// is provided, when it has no option).
	Reason string `json:"reason,omitempty"`
	// Enable lists the options to turn on ("CONFIG_USER_NS=y").
	Enable []string `json:"enable,omitempty"`
}

// Namespace applies a rule to the config.
func (c *Config) Namespace(r NSRule) NSVerdict {
	v := NSVerdict{Type: r.Type, State: BuiltIn, Available: true}
	if r.Option != "" {
		v.Option = "CONFIG_" + r.Option
		v.State = c.State(r.Option)
	}
	if r.Since != [2]int{} && c.Version != "" && !AtLeast(c.Version, r.Since[0], r.Since[1]) {
		v.Available, v.State = false, Absent
		v.Reason = fmt.Sprintf("%s namespaces need kernel %d.%d or newer; this config is for %s", r.Type, r.Since[0], r.Since[1], c.Version)
		return v
	}
	var off []string
	for _, req := range r.Requires {
		if !c.Has(req) {
			off = append(off, "CONFIG_"+req)
		}
	}
	if r.Option != "" && !c.Has(r.Option) {
		off = append(off, v.Option)
	}
	switch {
	case len(off) > 0:
		v.Available = false
		if r.Option == "" {
			v.State = Absent
		}
		v.Reason = fmt.Sprintf("%s is not set in this kernel config", joinAnd(off))
		for _, o := range off {
			v.Enable = append(v.Enable, o+"=y")
		}
	case r.Option == "" && len(r.Requires) == 0:
		v.Reason = r.Type + " namespaces have no option: always built in"
	case r.Option == "":
		v.Reason = r.Type + " namespaces have no option of their own: built in with CONFIG_" + r.Requires[0]
	}
	return v
}

// Namespaces applies every rule, in NSRules order.
func (c *Config) Namespaces() []NSVerdict {
	out := make([]NSVerdict, 0, len(NSRules))
	for _, r := range NSRules {
		out = append(out, c.Namespace(r))
	}
	return out
}

// Dependency is an option some properties or diagnoses depend on.
type Dependency struct {
	Option string `json:"option"`
	State  string `json:"state"`
	UsedBy string `json:"used_by"`
}

// Dependencies are the options nscheck's properties and diagnosis rely on,
// besides the namespace options themselves.
var Dependencies = []Dependency{
	{Option: "SYSVIPC", UsedBy: "ipc.sysv-* properties (SysV message queues, shared memory, semaphores)"},
	{Option: "POSIX_MQUEUE", UsedBy: "ipc.posix-mqueue-invisible (the mqueue filesystem)"},
	{Option: "VETH", UsedBy: "net.link-no-leak, net.veth-connects (veth pairs)"},
	{Option: "CHECKPOINT_RESTORE", UsedBy: "setting a child's PID (ns_last_pid, clone3 set_tid) in pid properties"},
	{Option: "PROC_FS", UsedBy: "every host-side check (/proc/<pid>/ns, /proc/<pid>/status)"},
	{Option: "SECCOMP", UsedBy: "diagnosis: a seccomp filter can deny namespace creation (EPERM)"},
	{Option: "SECURITY_APPARMOR", UsedBy: "diagnosis: AppArmor can restrict unprivileged user namespaces (EACCES)"},
	{Option: "BPF_LSM", UsedBy: "diagnosis: a BPF LSM program can deny namespace creation"},
}

// Deps reports the state of every option in Dependencies.
func (c *Config) Deps() []Dependency {
	out := make([]Dependency, 0, len(Dependencies))
	for _, d := range Dependencies {
		d.State = c.State(d.Option)
		d.Option = "CONFIG_" + d.Option
		out = append(out, d)
	}
	return out
}

// EnableCommand is the command that turns options ("CONFIG_USER_NS=y") on
// in a kernel source tree's .config.
func EnableCommand(enable []string) string {
	cmd := "scripts/config"
	for _, o := range enable {
		cmd += " --enable " + strings.TrimSuffix(strings.TrimPrefix(o, "CONFIG_"), "=y")
	}
	return cmd + " && make olddefconfig"
}

// joinAnd joins ["a", "b", "c"] as "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}
