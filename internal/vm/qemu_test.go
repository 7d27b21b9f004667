package vm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestArgsTCG(t *testing.T) {
	c := Config{Kernel: "/k", Initrd: "/i", MemoryMB: 256, CPUs: 2, Accel: AccelTCG, ReportSocket: "/d/r.sock",
		Append: " sysctl.kernel.unprivileged_userns_clone=0 "}
	want := []string{
		"-nodefaults", "-no-user-config", "-nographic", "-M", "pc", "-m", "256", "-smp", "2",
		"-accel", "tcg", "-cpu", "qemu64,+rdrand", "-no-reboot", "-kernel", "/k", "-initrd", "/i",
		"-append", "console=ttyS0 panic=-1 cryptomgr.notests no_timer_check NSCHECK_VM=1 sysctl.kernel.unprivileged_userns_clone=0",
		"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
		"-chardev", "socket,id=report,path=/d/r.sock", "-serial", "chardev:report",
	}
	if got := c.Args(); !reflect.DeepEqual(got, want) {
		t.Errorf("args\n%q\nwant\n%q", got, want)
	}
}

func TestArgsKVM(t *testing.T) {
	got := strings.Join(Config{Accel: AccelKVM, MemoryMB: 128, CPUs: 1}.Args(), " ")
	if !strings.Contains(got, "-accel kvm -cpu host") || strings.Contains(got, "tcg") {
		t.Errorf("kvm args: %s", got)
	}
	if got := (Config{Accel: AccelKVM, CPU: "max"}).CPUModel(); got != "max" {
		t.Errorf("--cpu max under KVM: %q", got)
	}
	if got := (Config{Accel: AccelTCG, CPU: "EPYC,-avx"}).CPUModel(); got != "EPYC,-avx" {
		t.Errorf("--cpu under TCG: %q", got)
	}
	if c := (Config{}); c.Cmdline() != "console=ttyS0 "+BaseCmdline {
		t.Errorf("cmdline without append: %q", c.Cmdline())
	}
	filter := `ns: containsAny {uts, "ipc"} && !needs:root`
	c := Config{LabelFilter: filter, Append: "quiet"}
	f := strings.Fields(c.Cmdline())
	n := 1 + len(strings.Fields(BaseCmdline))
	if len(f) != n+2 || f[n+1] != "quiet" || !strings.HasPrefix(f[n], LabelsEnv+"=") {
		t.Fatalf("cmdline %q", c.Cmdline())
	}
	if got, err := DecodeLabels(strings.TrimPrefix(f[n], LabelsEnv+"=")); err != nil || got != filter {
		t.Errorf("labels back: %q, %v", got, err)
	}
}

func TestFindQboot(t *testing.T) {
	dir := t.TempDir()
	fw := filepath.Join(dir, "fw")
	if err := os.Mkdir(fw, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "qemu")
	script := "#!/bin/sh\n[ \"$1 $2\" = \"-L help\" ] || exit 1\necho " + dir + "/nowhere\necho " + fw + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := FindQboot(fake); got != "" {
		t.Errorf("FindQboot = %q without a qboot.rom", got)
	}
	if err := os.WriteFile(filepath.Join(fw, "qboot.rom"), []byte("rom"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := FindQboot(fake); got != filepath.Join(fw, "qboot.rom") {
		t.Errorf("FindQboot = %q", got)
	}
	if got := FindQboot(filepath.Join(dir, "absent")); got != "" {
		t.Errorf("FindQboot of a missing qemu = %q", got)
	}
	c := Config{BIOS: "/fw/qboot.rom", MemoryMB: 128, CPUs: 1}
	if args := strings.Join(c.Args(), " "); !strings.Contains(args, " -bios /fw/qboot.rom ") || c.Firmware() != FirmwareQboot {
		t.Errorf("args %s, firmware %s", args, c.Firmware())
	}
	if (Config{}).Firmware() != FirmwareSeaBIOS {
		t.Error("no BIOS is not SeaBIOS")
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{MemoryMB: 32}).Validate(); err == nil {
		t.Error("32 MiB accepted")
	}
	if err := (Config{MemoryMB: 256, Append: "a\nb"}).Validate(); err == nil {
		t.Error("multi-line append accepted")
	}
	if err := (Config{MemoryMB: 256, Append: "quiet"}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (Config{MemoryMB: 256, CPU: "max -smp 8"}).Validate(); err == nil || !strings.Contains(err.Error(), "--cpu") {
		t.Errorf("a --cpu with spaces: %v", err)
	}
	for _, l := range append([]string{""}, CgroupLayouts...) {
		if err := (Config{MemoryMB: 256, Cgroup: l}).Validate(); err != nil {
			t.Errorf("--cgroup %q: %v", l, err)
		}
	}
	if err := (Config{MemoryMB: 256, Cgroup: "unified"}).Validate(); err == nil || !strings.Contains(err.Error(), "--cgroup") {
		t.Errorf("--cgroup unified: %v", err)
	}
}

// TestCgroupCmdline: the default layout adds nothing to the command line,
// the others name themselves to init.
func TestCgroupCmdline(t *testing.T) {
	for l, want := range map[string]string{"": "", CgroupNamed: "", CgroupV2: CgroupEnv + "=v2", CgroupHybrid: CgroupEnv + "=hybrid", CgroupV1: CgroupEnv + "=v1"} {
		line := Config{Cgroup: l}.Cmdline()
		got := ""
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, CgroupEnv+"=") {
				got = f
			}
		}
		if got != want {
			t.Errorf("--cgroup %q: cmdline %q, want %q in it", l, line, want)
		}
	}
}

func TestChooseAccel(t *testing.T) {
	missing := HostAccel{KVMErr: os.ErrNotExist}
	pvm := HostAccel{PVM: true}
	real := HostAccel{}
	for _, c := range []struct {
		mode string
		host HostAccel
		try  []string
		note string // a substring, "" for none
		err  bool
	}{
		{"auto", real, []string{"kvm", "tcg"}, "", false},
		{"", real, []string{"kvm", "tcg"}, "", false},
		{"auto", pvm, []string{"tcg"}, "kvm_pvm", false},
		{"auto", missing, []string{"tcg"}, "KVM unavailable", false},
		{"tcg", real, []string{"tcg"}, "", false},
		{"kvm", pvm, []string{"kvm"}, "", false}, // asked for: the user's call
		{"kvm", missing, nil, "", true},
		{"hvf", real, nil, "", true},
	} {
		p, err := ChooseAccel(c.mode, c.host)
		if (err != nil) != c.err {
			t.Errorf("%s %+v: err %v", c.mode, c.host, err)
			continue
		}
		if !reflect.DeepEqual(p.Try, c.try) || (c.note == "") != (p.Note == "") || !strings.Contains(p.Note, c.note) {
			t.Errorf("%s %+v: %+v", c.mode, c.host, p)
		}
	}
}

func TestArgsARM64(t *testing.T) {
	c := Config{Arch: ARM64, Kernel: "/k", Initrd: "/i", MemoryMB: 512, CPUs: 2, Accel: AccelTCG, ReportSocket: "/d/r.sock"}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{"-M virt", "-cpu max", "console=ttyAMA0 ", "-device virtio-serial-pci",
		"-device virtserialport,chardev=report,name=" + ReportPort} {
		if !strings.Contains(got, want) {
			t.Errorf("arm64 args lack %q: %s", want, got)
		}
	}
	if strings.Contains(got, "-bios") || c.Firmware() != "" {
		t.Errorf("arm64 gets no firmware: %s", got)
	}
}
