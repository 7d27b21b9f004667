package vm

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GuestEnv is set on the guest kernel's command line: the kernel hands a
// parameter it does not know that has a "=" and no "." to init as an
// environment variable, which is how nscheck, started as PID 1, knows it is
// the guest (see internal/guest). /proc is not mounted yet at that point.
const GuestEnv = "NSCHECK_VM"

// Accelerators.
const (
	AccelAuto = "auto"
	AccelTCG  = "tcg"
	AccelKVM  = "kvm"
)

// Config is one QEMU invocation.
type Config struct {
	// Arch is the guest's architecture ("" is AMD64).
	Arch Arch
	// QEMU is the emulator binary (qemu-system-x86_64, qemu-system-aarch64).
	QEMU string
	// Kernel and Initrd are the image (a bzImage, or an ELF kernel with a
	// PVH entry) and the initramfs.
	Kernel, Initrd string
	// Append is extra kernel command line, after nscheck's own.
	Append string
	// LabelFilter selects the properties the guest runs ("" for all).
	LabelFilter string
	// Cgroup is how the guest mounts cgroups (CgroupNamed when "").
	Cgroup string
	// MemoryMB is the guest's memory.
	MemoryMB int
	// CPUs is the number of virtual CPUs.
	CPUs int
	// Accel is AccelTCG or AccelKVM (auto is resolved before).
	Accel string
	// BIOS is the firmware image ("" for QEMU's default, SeaBIOS).
	BIOS string
	// CPU is QEMU's -cpu model; "" for the accelerator's default (see
	// CPUModel).
	CPU string
	// ReportSocket is a unix socket the host listens on; the guest's
	// report channel (ReportUART, ReportPort) is connected to it.
	ReportSocket string
}

// BaseCmdline is the kernel command line nscheck always passes after the
// console (console=ttyS0, the first UART; ttyAMA0 on arm64): reboot at
// once on a panic (with -no-reboot QEMU then exits, so a panic never
// hangs), no self-tests of the crypto algorithms at boot (half a second
// under TCG, and no namespace depends on them), no check that the timer
// interrupt ticks at the rate it should (under TCG on a busy host it does
// not, and 5.10 panics with "IO-APIC + timer doesn't work"; KVM guests skip
// the check by themselves), and the guest marker.
const BaseCmdline = "panic=-1 cryptomgr.notests no_timer_check " + GuestEnv + "=1"

// How the kernel was entered (report.VM.Entry).
const (
	// EntryPVH is the uncompressed kernel booted through its PVH entry.
	EntryPVH = "pvh"
	// EntryBzImage is the bzImage, which decompresses itself.
	EntryBzImage = "bzimage"
	// EntryImage is an arm64 Image (decompressed on the host when the
	// package ships it gzipped), entered as a boot loader would.
	EntryImage = "image"
)

// LabelsEnv carries a label filter for the guest's catalog, base64url
// encoded (a filter has spaces, braces and quotes that the kernel command
// line would split or strip).
const LabelsEnv = "NSCHECK_VM_LABELS"

// Cmdline is the kernel command line of c.
func (c Config) Cmdline() string {
	arch := c.Arch
	if arch == "" {
		arch = AMD64
	}
	line := "console=" + arch.Console() + " " + BaseCmdline
	if c.LabelFilter != "" {
		line += " " + LabelsEnv + "=" + base64.RawURLEncoding.EncodeToString([]byte(c.LabelFilter))
	}
	if c.Cgroup != "" && c.Cgroup != CgroupNamed {
		line += " " + CgroupEnv + "=" + c.Cgroup
	}
	if a := strings.TrimSpace(c.Append); a != "" {
		line += " " + a
	}
	return line
}

// The cgroup layouts of the guest (nscheck vm --cgroup), each that of a
// kind of host. CgroupNamed, the default, is cgroup2 at /sys/fs/cgroup
// with a named v1 hierarchy beside it (no controllers), the one the
// CVE-2022-0492 check mounts. CgroupV2 is cgroup2 alone, as on a
// distribution of the last years. CgroupHybrid is systemd's hybrid
// (Debian 10, Ubuntu 18.04 and 20.04 by default): every controller on a v1
// hierarchy of its own under a tmpfs at /sys/fs/cgroup, a name=systemd
// one, and cgroup2 without controllers at /sys/fs/cgroup/unified.
// CgroupV1 is a legacy host's (RHEL 7 and 8): the same without cgroup2.
const (
	CgroupNamed  = "v2+named"
	CgroupV2     = "v2"
	CgroupHybrid = "hybrid"
	CgroupV1     = "v1"
)

// CgroupLayouts are the layouts, the default first.
var CgroupLayouts = []string{CgroupNamed, CgroupV2, CgroupHybrid, CgroupV1}

// CgroupEnv carries a layout other than CgroupNamed to the guest's init.
const CgroupEnv = "NSCHECK_VM_CGROUP"

// DecodeLabels is the guest's side of LabelsEnv.
func DecodeLabels(v string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", LabelsEnv, err)
	}
	return string(b), nil
}

// The guest side of the report channel: on a PC the second UART
// (ReportUART); on arm64, whose virt board has a single PL011 before QEMU
// 10.0, a virtio serial port named ReportPort (virtio_console, which the
// guest loads from the initramfs when the kernel builds it as a module) on
// the PCI bus (virtio-mmio is a module in Debian's cloud-arm64 kernel);
// devtmpfs names it /dev/vportNpM, its name is in sysfs).
const (
	ReportUART = "/dev/ttyS1"
	ReportPort = "nscheck.report"
)

// Args is QEMU's command line (without the binary). The console (ttyS0,
// ttyAMA0) is QEMU's stdio; the report channel (ReportUART, ReportPort) connects to
// ReportSocket. No default devices, no display, no network, no disk: the
// initramfs is the whole guest.
func (c Config) Args() []string {
	machine := "pc"
	if c.Arch == ARM64 {
		machine = "virt"
	}
	a := []string{
		"-nodefaults", "-no-user-config", "-nographic",
		"-M", machine, "-m", strconv.Itoa(c.MemoryMB), "-smp", strconv.Itoa(c.CPUs),
	}
	accel := AccelTCG
	if c.Accel == AccelKVM {
		accel = AccelKVM
	}
	a = append(a, "-accel", accel, "-cpu", c.CPUModel())
	if c.BIOS != "" {
		a = append(a, "-bios", c.BIOS)
	}
	a = append(a,
		"-no-reboot",
		"-kernel", c.Kernel, "-initrd", c.Initrd,
		"-append", c.Cmdline(),
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		"-chardev", "socket,id=report,path="+c.ReportSocket,
	)
	if c.Arch == ARM64 {
		return append(a, "-device", "virtio-serial-pci",
			"-device", "virtserialport,chardev=report,name="+ReportPort)
	}
	return append(a, "-serial", "chardev:report")
}

// TCGCPU is the CPU the guest gets under TCG: QEMU's baseline x86-64 and
// RDRAND. Under TCG every instruction is emulated, and what a richer model
// (-cpu max) offers costs time rather than saving it: the kernel clears and
// copies pages with byte-wise "rep stosb/movsb" when it sees ERMS, pays a
// fifth level in every emulated page walk with LA57, and saves and restores
// AVX and PKRU state at every switch. Over the catalog that is a third of a
// kernel's time. RDRAND seeds the kernel's random pool at boot, as on any
// machine of the last decade. Namespaces do not depend on CPU features;
// --cpu picks another model.
const TCGCPU = "qemu64,+rdrand"

// CPUModel is c's -cpu: CPU when set, else the host's CPU under KVM,
// TCGCPU under TCG and "max" for arm64 (QEMU's virt board has no default
// CPU that runs Debian's kernels).
func (c Config) CPUModel() string {
	switch {
	case c.CPU != "":
		return c.CPU
	case c.Accel == AccelKVM:
		return "host"
	case c.Arch == ARM64:
		return "max"
	}
	return TCGCPU
}

// Firmware names.
const (
	FirmwareQboot   = "qboot"
	FirmwareSeaBIOS = "seabios"
)

// Firmware names what starts the kernel: qboot when BIOS is set (the only
// firmware nscheck passes), else QEMU's default, SeaBIOS; none on arm64,
// where QEMU enters the kernel itself.
func (c Config) Firmware() string {
	if c.Arch == ARM64 {
		return ""
	}
	if c.BIOS != "" {
		return FirmwareQboot
	}
	return FirmwareSeaBIOS
}

// FindQboot returns the path of qboot.rom in the firmware directories
// that qemu searches (qemu -L help lists them), or "" when it has none.
// qboot is QEMU's minimal firmware for booting a kernel directly: it
// hands over in about a third of SeaBIOS's time under TCG. Debian ships it
// in qemu-system-data, which qemu-system-x86 depends on.
func FindQboot(qemu string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, qemu, "-L", "help").Output()
	if err != nil {
		return ""
	}
	for _, dir := range strings.Split(string(out), "\n") {
		if dir = strings.TrimSpace(dir); dir == "" {
			continue
		}
		p := filepath.Join(dir, "qboot.rom")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return filepath.Clean(p)
		}
	}
	return ""
}

// Validate checks the parts of c the user chose.
func (c Config) Validate() error {
	if c.MemoryMB < 64 {
		return fmt.Errorf("--memory %d: at least 64 (MiB)", c.MemoryMB)
	}
	if strings.ContainsAny(c.Append, "\n\x00") {
		return errors.New("--append: must be one line")
	}
	if c.Cgroup != "" && !slices.Contains(CgroupLayouts, c.Cgroup) {
		return fmt.Errorf("--cgroup %q: want one of %s", c.Cgroup, strings.Join(CgroupLayouts, ", "))
	}
	if strings.ContainsAny(c.CPU, " \t\n\x00") {
		return fmt.Errorf("--cpu %q: a QEMU CPU model with its features, e.g. max or qemu64,+rdrand", c.CPU)
	}
	return nil
}

// HostAccel is what the host offers for acceleration.
type HostAccel struct {
	// KVMErr is why /dev/kvm cannot be used (nil when it opens).
	KVMErr error
	// PVM is set when /dev/kvm is kvm_pvm, a nested layer for guests built
	// for it: a bzImage dies in its decompressor, and QEMU aborts on a PVH
	// entry (it cannot set the guest's MSRs).
	PVM bool
}

// ProbeHost looks at /dev/kvm and the loaded KVM modules.
func ProbeHost() HostAccel {
	var h HostAccel
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		h.KVMErr = err
	} else {
		f.Close()
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		h.PVM = true
	}
	return h
}

// AccelPlan is the accelerators to try in order, and a line saying why
// when the choice is not the obvious one.
type AccelPlan struct {
	Try  []string
	Note string
}

// ChooseAccel resolves --accel. auto tries KVM first (and falls back to TCG
// when it fails) only where KVM is real: not where /dev/kvm is missing or
// is kvm_pvm.
func ChooseAccel(mode string, h HostAccel) (AccelPlan, error) {
	switch mode {
	case AccelTCG:
		return AccelPlan{Try: []string{AccelTCG}}, nil
	case AccelKVM:
		if h.KVMErr != nil {
			return AccelPlan{}, fmt.Errorf("--accel kvm: %v", h.KVMErr)
		}
		return AccelPlan{Try: []string{AccelKVM}}, nil
	case AccelAuto, "":
		switch {
		case h.KVMErr != nil:
			return AccelPlan{Try: []string{AccelTCG}, Note: fmt.Sprintf("KVM unavailable (%v): using TCG", h.KVMErr)}, nil
		case h.PVM:
			return AccelPlan{Try: []string{AccelTCG}, Note: "KVM is kvm_pvm (a nested layer that cannot run a stock kernel): using TCG"}, nil
		}
		return AccelPlan{Try: []string{AccelKVM, AccelTCG}}, nil
	}
	return AccelPlan{}, fmt.Errorf("--accel %q: want auto, tcg or kvm", mode)
}
