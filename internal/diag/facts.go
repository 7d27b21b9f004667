package diag

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/caps"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/ownview"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// Knob states.
const (
	KnobSet        = "set"        // read: Value holds it
	KnobMissing    = "missing"    // no such file: this kernel lacks the knob
	KnobUnreadable = "unreadable" // exists, but this process may not read it
)

// Knob is one policy setting read from /proc/sys.
type Knob struct {
	// Name is the sysctl name ("user.max_uts_namespaces").
	Name  string `json:"name"`
	State string `json:"state"`
	Value string `json:"value,omitempty"`
	// Meaning says what the value does to namespaces, in words.
	Meaning string `json:"meaning,omitempty"`
}

// Int is the knob's integer value; ok is false when it is not set or not
// an integer.
func (k Knob) Int() (int64, bool) {
	if k.State != KnobSet {
		return 0, false
	}
	n, err := parseSysctlInt([]byte(k.Value))
	return n, err == nil
}

// procSys is where sysctls are read (a variable for tests).
var procSys = "/proc/sys"

// readKnob reads the sysctl name ("kernel.unprivileged_userns_clone").
func readKnob(name string) Knob {
	k := Knob{Name: name}
	data, err := os.ReadFile(filepath.Join(procSys, strings.ReplaceAll(name, ".", "/")))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.State = KnobMissing
	case err != nil:
		k.State = KnobUnreadable
		k.Meaning = "cannot be read by this process (" + errnoName(err) + ")"
	default:
		v, perr := parseSysctl(data)
		if perr != nil {
			k.State, k.Meaning = KnobUnreadable, perr.Error()
		} else {
			k.State, k.Value = KnobSet, v
		}
	}
	return k
}

// Sysctl names of the policy knobs.
const (
	knobUnprivClone  = "kernel.unprivileged_userns_clone"
	knobAARestrict   = "kernel.apparmor_restrict_unprivileged_userns"
	knobAAComplain   = "kernel.apparmor_restrict_unprivileged_userns_complain"
	knobAAForce      = "kernel.apparmor_restrict_unprivileged_userns_force"
	knobAAUnconfined = "kernel.apparmor_restrict_unprivileged_unconfined"
	knobThreadsMax   = "kernel.threads-max"
)

// maxKnob is the sysctl that limits namespaces of a type per user namespace.
func maxKnob(typ string) string { return "user.max_" + typ + "_namespaces" }

// readKnobs reads every policy knob and says what its value means.
func readKnobs() []Knob {
	var out []Knob
	for _, typ := range nsfs.Types {
		k := readKnob(maxKnob(typ))
		if n, ok := k.Int(); ok && n == 0 {
			k.Meaning = typ + " namespaces are disabled in this user namespace and its descendants"
		} else if ok {
			k.Meaning = fmt.Sprintf("at most %d %s namespaces per user (this user namespace)", n, typ)
		}
		out = append(out, k)
	}
	k := readKnob(knobUnprivClone)
	switch n, ok := k.Int(); {
	case k.State == KnobMissing:
		k.Meaning = "not in this kernel (a Debian/Arch patch): it does not restrict anything here"
	case ok && n == 0:
		k.Meaning = "unprivileged user namespaces are disabled (EPERM)"
	case ok:
		k.Meaning = "unprivileged user namespaces are allowed"
	}
	out = append(out, k)
	for _, name := range []string{knobAARestrict, knobAAComplain, knobAAForce, knobAAUnconfined} {
		k := readKnob(name)
		switch n, ok := k.Int(); {
		case k.State == KnobMissing:
			k.Meaning = "not in this kernel (Ubuntu 23.10+ AppArmor)"
		case ok && n != 0 && name == knobAARestrict:
			k.Meaning = "unprivileged user namespaces need an AppArmor profile that allows userns (EACCES otherwise)"
		case ok && n == 0 && name == knobAARestrict:
			k.Meaning = "AppArmor does not restrict unprivileged user namespaces"
		}
		out = append(out, k)
	}
	return out
}

// Self is what nscheck itself runs as.
type Self struct {
	EUID int `json:"euid"`
	// CapEff is the effective capability set in hex, as in /proc/self/status.
	CapEff      string `json:"cap_eff"`
	CapSysAdmin bool   `json:"cap_sys_admin"`
	NoNewPrivs  bool   `json:"no_new_privs"`
	// Seccomp is "disabled", "strict" or "filter".
	Seccomp string `json:"seccomp"`
	// UserNS is "initial", or "nested" with UIDMap saying how.
	UserNS string    `json:"user_namespace"`
	UIDMap []idRange `json:"uid_map,omitempty"`
	// Container lists the signs that nscheck runs inside a container.
	Container []string `json:"container,omitempty"`
	// EffectiveLacks and BoundingLacks name the capabilities missing from
	// nscheck's effective and bounding sets (all of them for a non-root
	// user's effective set).
	EffectiveLacks []string `json:"effective_lacks"`
	BoundingLacks  []string `json:"bounding_lacks"`
	// Proc says whether /proc is of nscheck's own PID namespace: "own",
	// or what is wrong with it.
	Proc string `json:"proc"`
	// Scratch is the directory checks make theirs in (prop.ScratchRoot),
	// or what is wrong with it.
	Scratch string `json:"scratch"`
	// Mounted lists what nscheck mounted for itself, in a mount namespace
	// of its own, because the caller's /proc or scratch space would not do
	// (internal/ownview); ViewError says why it could not.
	Mounted   []string `json:"mounted,omitempty"`
	ViewError string   `json:"view_error,omitempty"`
	// Loopback is "up" or "down": the state of lo in nscheck's network
	// namespace (a new one starts with it down).
	Loopback string `json:"loopback"`
	// Chrooted says that nscheck's root is not its mount namespace's (a
	// chroot): the kernel refuses a new user namespace to a chrooted
	// process with EPERM.
	Chrooted bool `json:"chrooted,omitempty"`
}

// InitialUserNS reports whether nscheck runs in the initial user namespace.
func (s Self) InitialUserNS() bool { return s.UserNS == "initial" }

func readSelf() Self {
	s := Self{EUID: os.Geteuid(), Seccomp: "unknown", UserNS: "unknown"}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		eff := uint64(data[1].Effective)<<32 | uint64(data[0].Effective)
		s.CapEff = fmt.Sprintf("%016x", eff)
		s.CapSysAdmin = eff&(1<<unix.CAP_SYS_ADMIN) != 0
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil {
		s.NoNewPrivs = v == 1
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err == nil {
		s.Seccomp = map[int]string{0: "disabled", 1: "strict", 2: "filter"}[v]
	}
	if data, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		if m, err := parseIDMap(data); err == nil {
			s.UIDMap = m
			s.UserNS = "nested"
			if isInitialMap(m) {
				s.UserNS, s.UIDMap = "initial", nil
			}
		}
	}
	s.Container = containerSigns()
	if c, err := caps.Self(); err == nil {
		s.EffectiveLacks, s.BoundingLacks = c.Effective.Missing(), c.Bounding.Missing()
	}
	s.Proc, s.Scratch = viewState(prop.ProcUnmet(), "own"), viewState(prop.ScratchUnmet(), prop.ScratchRoot())
	if v := ownview.Current(); v.Proc != "" {
		// What the caller gave, before nscheck mounted its own.
		s.Proc, s.Scratch, s.Mounted, s.ViewError = v.Proc, v.Scratch, v.Mounted, v.Err
	}
	s.Loopback = loopback()
	s.Chrooted = chrooted()
	return s
}

// chrooted reports whether nscheck runs in a chroot, by two signs: its
// mount table has no mount on / (the kernel leaves out of mountinfo the
// mounts outside a process's root, and so the one a chroot directory is
// on), or its root differs from that of PID 1 in the same mount namespace.
// It says false when it cannot tell.
func chrooted() bool {
	if ms, err := procfile.Mounts(0); err == nil && len(ms) > 0 {
		root := false
		for _, m := range ms {
			root = root || m.Mountpoint == "/"
		}
		if !root {
			return true
		}
	}
	own, err := nsfs.Of(0, "mnt")
	if err != nil {
		return false
	}
	if init, err := nsfs.Of(1, "mnt"); err != nil || init != own {
		return false
	}
	var root, initRoot unix.Stat_t
	if unix.Stat("/", &root) != nil || unix.Stat("/proc/1/root", &initRoot) != nil {
		return false
	}
	return root.Dev != initRoot.Dev || root.Ino != initRoot.Ino
}

// viewState is ok when the premise's probe found nothing wrong, else what
// it found.
func viewState(unmet error, ok string) string {
	if unmet == nil {
		return ok
	}
	if r, isUnmet := prop.SkipReason(unmet); isUnmet {
		return r
	}
	return "unknown: " + unmet.Error()
}

// loopback reads the flags of lo in this network namespace.
func loopback() string {
	up, err := prop.LoopbackUp()
	switch {
	case err != nil:
		return "unknown: " + err.Error()
	case up:
		return "up"
	}
	return "down"
}

// containerSigns looks for the marks container runtimes leave.
func containerSigns() []string {
	var out []string
	for path, what := range map[string]string{"/.dockerenv": "docker", "/run/.containerenv": "podman"} {
		if _, err := os.Stat(path); err == nil {
			out = append(out, what+" ("+path+" exists)")
		}
	}
	if env, err := os.ReadFile("/proc/1/environ"); err == nil {
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "container="); ok {
				out = append(out, "container="+v+" in the environment of PID 1")
			}
		}
	}
	if cg, err := os.ReadFile("/proc/1/cgroup"); err == nil {
		for _, word := range []string{"docker", "kubepods", "containerd", "libpod", "lxc"} {
			if strings.Contains(string(cg), word) {
				out = append(out, "/proc/1/cgroup mentions "+word)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// cgroupView is how cgroups are mounted at /sys/fs/cgroup, with the v1
// hierarchies this process is in besides cgroup2 (a named one, as
// nscheck vm's default guest has, is mounted elsewhere).
func cgroupView() string {
	cgs, err := procfile.ReadCgroups(0)
	if err != nil {
		return cgroupVersion()
	}
	return withV1(cgroupVersion(), cgs)
}

// withV1 adds to version "v2" the v1 hierarchies of cgs.
func withV1(version string, cgs []procfile.Cgroup) string {
	if version != "v2" {
		return version
	}
	var v1 []string
	for _, c := range cgs {
		if c.HierarchyID != 0 && c.Controllers != "" {
			v1 = append(v1, c.Controllers)
		}
	}
	if len(v1) == 0 {
		return version
	}
	sort.Strings(v1)
	return version + ", and cgroup v1 hierarchies: " + strings.Join(v1, " ")
}

// cgroupVersion says how cgroups are mounted at /sys/fs/cgroup.
func cgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown (/sys/fs/cgroup: " + errnoName(err) + ")"
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return "v2"
	case unix.TMPFS_MAGIC:
		if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
		}
		return "v1"
	}
	return "unknown (/sys/fs/cgroup is not a cgroup mount)"
}

// LSM is what the security modules say.
type LSM struct {
	// Active lists the LSMs of /sys/kernel/security/lsm (when securityfs
	// is mounted).
	Active []string `json:"active,omitempty"`
	// AppArmor is "enabled", "disabled" or "not in this kernel".
	AppArmor string `json:"apparmor"`
}

func readLSM() LSM {
	l := LSM{AppArmor: "not in this kernel"}
	if data, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil {
		l.Active = strings.Split(strings.TrimSpace(string(data)), ",")
	}
	if data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil {
		l.AppArmor = "disabled"
		if strings.TrimSpace(string(data)) == "Y" {
			l.AppArmor = "enabled"
		}
	}
	return l
}

// Cmdline holds the kernel command line parameters that decide namespaces.
type Cmdline struct {
	// Params maps each relevant parameter present to its value ("" for a
	// bare flag).
	Params map[string]string `json:"params,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// cmdlineKeys are the parameters worth reporting.
var cmdlineKeys = []string{
	"user_namespace.enable",   // RHEL/CentOS 7: user namespaces off unless =1
	"namespace.unpriv_enable", // RHEL/CentOS 7: unprivileged namespaces
	"apparmor", "security", "lsm",
	"systemd.unified_cgroup_hierarchy", "cgroup_no_v1",
}

func readCmdline() Cmdline {
	var c Cmdline
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		c.Error = err.Error()
		return c
	}
	params, err := parseCmdline(data)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	for _, p := range params {
		for _, k := range cmdlineKeys {
			if p.Key == k {
				if c.Params == nil {
					c.Params = map[string]string{}
				}
				c.Params[k] = p.Value
			}
		}
	}
	return c
}

// errnoName renders the errno of err as its name ("EACCES"), else the text.
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return strconv.Itoa(int(errno))
	}
	return err.Error()
}
