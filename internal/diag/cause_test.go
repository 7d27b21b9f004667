package diag

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/ownmount"

	"github.com/nscheck/nscheck/internal/kconfig"
)

// testFacts builds facts from sysctl values ("" = missing file).
func testFacts(knobs map[string]string) *facts {
	f := &facts{knobs: map[string]Knob{}, self: Self{UserNS: "initial", CapSysAdmin: true, Seccomp: "disabled"}, lsm: LSM{AppArmor: "not in this kernel"}, kernel: "6.1.0-28-cloud-amd64"}
	for _, typ := range []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"} {
		f.knobs[maxKnob(typ)] = Knob{Name: maxKnob(typ), State: KnobSet, Value: "63212"}
	}
	for k, v := range knobs {
		switch v {
		case "":
			f.knobs[k] = Knob{Name: k, State: KnobMissing}
		case "unreadable":
			f.knobs[k] = Knob{Name: k, State: KnobUnreadable}
		default:
			f.knobs[k] = Knob{Name: k, State: KnobSet, Value: v}
		}
	}
	return f
}

func mustCause(t *testing.T, f *facts, errno syscall.Errno, typs []string, unpriv bool) Cause {
	t.Helper()
	c, ok := f.cause(errno, typs, unpriv)
	if !ok {
		t.Fatalf("%v: no cause", errno)
	}
	return c
}

func TestCauseMaxZero(t *testing.T) {
	f := testFacts(map[string]string{"user.max_uts_namespaces": "0"})
	c := mustCause(t, f, unix.ENOSPC, []string{"uts"}, false)
	if c.Knob != "user.max_uts_namespaces" || !strings.Contains(c.Text, "user.max_uts_namespaces is 0 in the initial user namespace") {
		t.Errorf("cause %+v", c)
	}
	r := c.Reason()
	if !strings.Contains(r, "sysctl -w user.max_uts_namespaces=63212") || !strings.Contains(r, "/etc/sysctl.d/90-nscheck-namespaces.conf") {
		t.Errorf("reason %q", r)
	}
	if c.Fixes[0].Content != "user.max_uts_namespaces = 63212\n" || !c.Fixes[0].Persist {
		t.Errorf("fix %+v", c.Fixes[0])
	}
	// In a nested user namespace the fix belongs to its creator; no file.
	f.self.UserNS = "nested"
	c = mustCause(t, f, unix.ENOSPC, []string{"user", "uts"}, true)
	if c.Fixes[0].File != "" || !strings.Contains(c.Text, "in this user namespace") || !strings.Contains(c.Fixes[0].Note, "CAP_SYS_RESOURCE") {
		t.Errorf("nested: %+v", c)
	}
	// No zero here: an ancestor's limit or the count; no command invented.
	c = mustCause(t, testFacts(nil), unix.ENOSPC, []string{"pid"}, false)
	if c.Knob != "user.max_pid_namespaces" || !strings.Contains(c.Text, "ancestor") || len(c.Fixes[0].Commands) != 0 {
		t.Errorf("no zero: %+v", c)
	}
}

func TestCauseUnprivilegedCloneDisabled(t *testing.T) {
	f := testFacts(map[string]string{knobUnprivClone: "0"})
	c := mustCause(t, f, unix.EPERM, []string{"user", "uts"}, true)
	if c.Knob != knobUnprivClone || !strings.HasPrefix(c.Reason(), "kernel.unprivileged_userns_clone is 0: unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1") {
		t.Errorf("%+v\n%s", c, c.Reason())
	}
	// A missing knob is not "disabled".
	f = testFacts(map[string]string{knobUnprivClone: ""})
	if c := mustCause(t, f, unix.EPERM, []string{"user"}, true); c.Knob == knobUnprivClone {
		t.Errorf("missing knob blamed: %+v", c)
	}
}

func TestCauseAppArmor(t *testing.T) {
	for _, v := range []string{"1", "unreadable"} {
		f := testFacts(map[string]string{knobAARestrict: v})
		c := mustCause(t, f, unix.EACCES, []string{"user"}, true)
		if c.Knob != knobAARestrict || len(c.Fixes) != 2 {
			t.Fatalf("%s: %+v", v, c)
		}
		one, global := c.Fixes[0], c.Fixes[1]
		if one.File != "/etc/apparmor.d/nscheck" || !strings.Contains(one.Content, "userns,") || one.Commands[0] != "apparmor_parser -r /etc/apparmor.d/nscheck" {
			t.Errorf("profile fix %+v", one)
		}
		if global.Commands[0] != "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" || !strings.Contains(global.Note, "attack surface") {
			t.Errorf("global fix %+v", global)
		}
		if !strings.Contains(c.Reason(), "write /etc/apparmor.d/nscheck") {
			t.Errorf("reason %q", c.Reason())
		}
	}
	f := testFacts(map[string]string{knobAARestrict: ""})
	if c := mustCause(t, f, unix.EACCES, []string{"user"}, true); c.Knob != "" {
		t.Errorf("AppArmor blamed where it is absent: %+v", c)
	}
}

func TestCauseKernelOption(t *testing.T) {
	cfg, err := kconfig.ParseFile(filepath.Join("..", "..", "fixtures", "kconfig", "debian-6.1-no-user-ns.config"))
	if err != nil {
		t.Fatal(err)
	}
	f := testFacts(nil)
	f.config = cfg
	c := mustCause(t, f, unix.EINVAL, []string{"user", "uts"}, true)
	if c.Knob != "CONFIG_USER_NS" || !strings.Contains(c.Reason(), "scripts/config --enable USER_NS") {
		t.Errorf("%+v", c)
	}
	// Config says yes, kernel says no: the config is not this kernel's.
	c = mustCause(t, f, unix.EINVAL, []string{"uts"}, false)
	if !strings.Contains(c.Text, "not this kernel's") {
		t.Errorf("%+v", c)
	}
}

func TestCauseRHEL7(t *testing.T) {
	f := testFacts(nil)
	f.kernel = "3.10.0-1160.el7.x86_64"
	c := mustCause(t, f, unix.EINVAL, []string{"user"}, false)
	want := `grubby --args="user_namespace.enable=1" --update-kernel="$(grubby --default-kernel)"`
	if c.Knob != "user_namespace.enable" || c.Fixes[0].Commands[0] != want {
		t.Errorf("%+v", c)
	}
	f.cmdline.Params = map[string]string{"user_namespace.enable": "1"}
	if c := mustCause(t, f, unix.EPERM, []string{"user"}, true); c.Knob != "namespace.unpriv_enable" {
		t.Errorf("unpriv on RHEL 7: %+v", c)
	}
}

func TestCausePrivilegeAndSeccomp(t *testing.T) {
	f := testFacts(nil)
	f.self.CapSysAdmin = false
	if c := mustCause(t, f, unix.EPERM, []string{"uts"}, false); c.Knob != "CAP_SYS_ADMIN" {
		t.Errorf("no cap: %+v", c)
	}
	f.self.CapSysAdmin, f.self.Seccomp = true, "filter"
	for _, unpriv := range []bool{false, true} {
		if c := mustCause(t, f, unix.EPERM, []string{"uts"}, unpriv); c.Knob != "seccomp" {
			t.Errorf("seccomp (unpriv %v): %+v", unpriv, c)
		}
	}
	if c := mustCause(t, f, unix.EUSERS, []string{"user"}, true); !strings.Contains(c.Text, "nesting limit") {
		t.Errorf("EUSERS: %+v", c)
	}
	if _, ok := f.cause(unix.ENOMEM, []string{"uts"}, false); ok {
		t.Error("ENOMEM explained as an environmental refusal")
	}
}

func TestReadKnob(t *testing.T) {
	dir := t.TempDir()
	old := procSys
	procSys = dir
	defer func() { procSys = old }()
	if k := readKnob("kernel.unprivileged_userns_clone"); k.State != KnobMissing {
		t.Errorf("missing: %+v", k)
	}
	// A directory in the file's place cannot be read: unreadable, not missing.
	if err := os.MkdirAll(filepath.Join(dir, "kernel", "apparmor_restrict_unprivileged_userns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if k := readKnob(knobAARestrict); k.State != KnobUnreadable || !strings.Contains(k.Meaning, "EISDIR") {
		t.Errorf("unreadable: %+v", k)
	}
	procSys = old
	if k := readKnob("user.max_uts_namespaces"); k.State != KnobSet {
		t.Errorf("live: %+v", k)
	}
}

func TestCauseChroot(t *testing.T) {
	f := testFacts(nil)
	f.self.Chrooted = true
	for _, unpriv := range []bool{false, true} {
		c := mustCause(t, f, unix.EPERM, []string{"user", "mnt"}, unpriv)
		if c.Knob != "chroot" || !strings.Contains(c.Text, "chroot") {
			t.Errorf("unpriv=%v: %+v", unpriv, c)
		}
	}
	// A chroot does not stop namespaces other than the user namespace.
	f.self.CapSysAdmin = false
	if c := mustCause(t, f, unix.EPERM, []string{"uts"}, false); c.Knob == "chroot" {
		t.Errorf("chroot blamed for a UTS namespace: %+v", c)
	}
}

func TestChrooted(t *testing.T) {
	if os.Getenv("NSCHECK_CHROOT_CHILD") == "1" {
		fmt.Printf("chrooted=%v\n", chrooted())
		// The same sign stops ownmount from making / private.
		fmt.Printf("make-private: %v\n", ownmount.MakePrivate())
		return
	}
	if chrooted() {
		t.Fatal("chrooted() outside a chroot")
	}
	out := inChroot(t, "^TestChrooted$")
	if !strings.Contains(out, "chrooted=true") {
		t.Errorf("inside a chroot: %s", out)
	}
	if !strings.Contains(out, "make-private: mount --make-rprivate /: "+ownmount.ErrRootNotMount.Error()) {
		t.Errorf("ownmount.MakePrivate in a chroot: %s", out)
	}
}

// inChroot runs this test binary's test run in a chroot (a plain directory,
// not a mount point, with /proc bound in) inside a private mount
// namespace, and returns its output.
func inChroot(t *testing.T, run string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/proc", 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/t", data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount --bind /proc \"$1\"/proc && exec chroot \"$1\" /t -test.run \"$2\" -test.v", "sh", dir, run)
	cmd.Env = append(os.Environ(), "NSCHECK_CHROOT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a chroot: %v: %s", err, out)
	}
	return string(out)
}
