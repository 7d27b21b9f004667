// Package guest is what nscheck does inside a virtual machine booted by
// `nscheck vm`. As the init process (PID 1) it sets up the little system
// the catalog needs (devtmpfs, proc, sysfs, tmpfs, the cgroup layout
// nscheck vm asked for, loopback up, the kernel modules shipped in the
// initramfs), then starts itself again as
// an ordinary child process that runs the whole catalog through
// internal/runner: properties such as pid.kill-outside-esrch need the
// observer not to be PID 1, and an init must reap the orphans the catalog
// leaves to it. The child hands its JSON report to init over a pipe; init
// sends it to the host gzipped, over the second UART in a frame (see internal/vm)
// and powers the machine off.
//
// The console (ttyS0) is for humans: the kernel's messages interleave with
// anything written there. The report goes to /dev/ttyS1 (on arm64, whose
// virt board has one PL011, to a virtio serial port: see vm.ReportPort), set to raw mode
// (no newline translation) and drained with TCSBRK before the power-off, so
// that the last byte has left the UART when QEMU stops.
//
// Init mounts, names the machine and brings lo up in the VM's initial
// namespaces on purpose: they are the guest's host, so there is no
// namespace to verify first. Everything the catalog then does inside new
// namespaces goes through helpers, which check at clone that the kernel
// created each namespace they asked for (see package helper and
// internal/nsguard): on a kernel that ignores one, the guest's own /proc
// and mounts stay as init made them and the report says which type is
// broken. The runner writes that report whatever the host guard could
// read, and init sends an error frame when there is none.
package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/runner"
	"github.com/nscheck/nscheck/internal/vm"
)

// The named cgroup v1 hierarchy of the default layout (vm.CgroupNamed),
// beside cgroup2, with no controller (those stay with cgroup2). Without
// one, cgroup.v1-release-agent (CVE-2022-0492) has nothing to mount and
// skips.
const (
	CgroupV1Dir     = "/run/cgroup-v1"
	CgroupV1Options = "none,name=nscheck"
)

// Hostname is the guest's hostname (the kernel's default is "(none)").
const Hostname = "nscheck-vm"

// helperTimeout is each helper's deadline in the guest: a spawn is several
// times slower under emulation than on the host.
const helperTimeout = 60 * time.Second

// Values of vm.GuestEnv: init's (from the kernel command line) and the
// catalog runner's (set by init for its child).
const (
	modeInit   = "1"
	modeRunner = "runner"
)

// Detect reports whether this process is part of the guest: its init (PID
// 1 with the marker that `nscheck vm` puts on the kernel command line; the
// kernel passes it to init as an environment variable, and a container's
// PID 1 does not have it) or the catalog runner that init starts.
func Detect() bool {
	switch os.Getenv(vm.GuestEnv) {
	case modeInit:
		return os.Getpid() == 1
	case modeRunner:
		return os.Getppid() == 1
	}
	return false
}

// Main runs the guest's part of this process and exits; as init it powers
// the machine off.
func Main() {
	if os.Getpid() != 1 {
		os.Exit(runCatalog())
	}
	logf("nscheck guest: setting up")
	ch, err := initMain()
	if err != nil {
		logf("nscheck guest: %v", err)
		if ch != nil {
			_ = vm.WriteFrame(ch, vm.ErrorFrame, []byte(err.Error()))
		}
	}
	if ch != nil {
		drain(ch)
	}
	powerOff()
}

// reportFD is the runner's end of the pipe its report goes through.
const reportFD = 3

// runCatalog is the runner child: the whole catalog, the report as JSON on
// fd 3.
func runCatalog() int {
	os.Unsetenv(vm.GuestEnv) // the helpers it spawns are not the guest
	helper.DefaultTimeout = helperTimeout
	// As many properties at once as the guest has CPUs (nscheck vm --cpus).
	opts := runner.Options{Procs: runtime.GOMAXPROCS(0)}
	if v := os.Getenv(vm.LabelsEnv); v != "" {
		f, err := vm.DecodeLabels(v)
		if err != nil {
			logf("nscheck guest: %v", err)
			return 1
		}
		opts.LabelFilter = f
	}
	rep, err := runner.Run(opts)
	if err != nil {
		logf("nscheck guest: run the catalog: %v", err)
		return 1
	}
	out := os.NewFile(reportFD, "report")
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		logf("nscheck guest: hand the report to init: %v", err)
		return 1
	}
	return 0
}

func initMain() (*os.File, error) {
	if err := mountAll(); err != nil {
		return nil, err
	}
	// On arm64 the report channel is a virtio serial port, whose driver
	// may be one of the modules: load them first there.
	var loaded []string
	var loadErrs []error
	modulesLoaded := false
	if runtime.GOARCH == "arm64" {
		loaded, loadErrs = LoadModules("/" + vm.ModulesDir)
		modulesLoaded = true
	}
	ch, err := openReport()
	if err != nil {
		return nil, err
	}
	rel := report.ThisKernel().Release
	if err := vm.WriteFrame(ch, vm.Hello, []byte(rel)); err != nil {
		return ch, err
	}
	if err := unix.Sethostname([]byte(Hostname)); err != nil {
		return ch, fmt.Errorf("sethostname: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return ch, err
	}
	if !modulesLoaded {
		loaded, loadErrs = LoadModules("/" + vm.ModulesDir)
	}
	var errs []string
	for _, err := range loadErrs {
		logf("nscheck guest: %v", err)
		errs = append(errs, err.Error())
	}
	if len(loaded) > 0 {
		logf("nscheck guest: loaded modules: %s", strings.Join(loaded, " "))
	}
	logf("nscheck guest: running the catalog on %s", rel)
	data, err := superviseRunner()
	if err != nil {
		return ch, err
	}
	rep, err := report.Decode(bytes.NewReader(data))
	if err != nil {
		return ch, fmt.Errorf("the runner's report: %w", err)
	}
	rep.Errors = append(rep.Errors, errs...)
	rep.VM = describe()
	rep.VM.Modules = loaded
	rep.VM.Cgroup = cgroupLayout()
	if data, err = json.Marshal(rep); err != nil {
		return ch, fmt.Errorf("encode the report: %w", err)
	}
	logf("nscheck guest: %d passed, %d failed, %d skipped; sending the report (%d bytes, gzipped)",
		rep.Summary.Passed, rep.Summary.Failed, rep.Summary.Skipped, len(data))
	return ch, vm.WriteReport(ch, data)
}

// superviseRunner starts the catalog runner (this binary again), reaps
// every process that ends up parented to init until the runner exits, and
// returns what the runner wrote on its report pipe.
func superviseRunner() ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	env := []string{vm.GuestEnv + "=" + modeRunner} // the first of duplicate keys wins: no init marker
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, vm.GuestEnv+"=") {
			env = append(env, kv)
		}
	}
	p, err := os.StartProcess("/proc/self/exe", []string{"/init"}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, w},
	})
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start the catalog runner: %w", err)
	}
	type result struct {
		data []byte
		err  error
	}
	read := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(r)
		r.Close()
		read <- result{data, err}
	}()
	var status unix.WaitStatus
	for {
		pid, err := unix.Wait4(-1, &status, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wait for the catalog runner: %w", err)
		}
		if pid == p.Pid {
			break
		}
	}
	res := <-read
	switch {
	case status.Signaled():
		return nil, fmt.Errorf("the catalog runner died of signal %v", status.Signal())
	case status.ExitStatus() != 0:
		return nil, fmt.Errorf("the catalog runner exited with status %d", status.ExitStatus())
	case res.err != nil:
		return nil, fmt.Errorf("read the runner's report: %w", res.err)
	}
	return res.data, nil
}

// loopbackUp brings lo up, as any init does: properties that use
// 127.0.0.1 on the host side need it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// mountAll mounts what the catalog and Go's os/exec need (exec opens
// /dev/null). The guest's root is the initramfs; nothing here touches any
// host.
func mountAll() error {
	for _, m := range []struct{ src, dst, fstype string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.fstype, unix.MS_NOSUID, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	mountCgroups(cgroupLayout())
	return nil
}

// cgroupLayout is the layout `nscheck vm --cgroup` asked for (one it does
// not know, which only --append can give, is the default).
func cgroupLayout() string {
	l := os.Getenv(vm.CgroupEnv)
	if slices.Contains(vm.CgroupLayouts, l) {
		return l
	}
	if l != "" {
		logf("nscheck guest: %s=%q: not a cgroup layout, using %s", vm.CgroupEnv, l, vm.CgroupNamed)
	}
	return vm.CgroupNamed
}

// mountCgroups mounts the cgroup file systems of layout (see vm.CgroupNamed).
// What a kernel lacks is logged, and the properties that need it skip.
func mountCgroups(layout string) {
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mount := func(fstype, dir, options string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			logf("nscheck guest: mkdir %s: %v", dir, err)
		} else if err := unix.Mount(fstype, dir, fstype, flags, options); err != nil {
			logf("nscheck guest: mount %s -o %q on %s: %v", fstype, options, dir, err)
		}
	}
	switch layout {
	case vm.CgroupNamed, vm.CgroupV2:
		mount("cgroup2", "/sys/fs/cgroup", "")
		if layout == vm.CgroupNamed {
			mount("cgroup", CgroupV1Dir, CgroupV1Options)
		}
		return
	}
	mount("tmpfs", "/sys/fs/cgroup", "mode=755")
	for _, c := range v1Controllers() {
		mount("cgroup", "/sys/fs/cgroup/"+c, c)
	}
	mount("cgroup", "/sys/fs/cgroup/systemd", "none,name=systemd")
	if layout == vm.CgroupHybrid {
		mount("cgroup2", "/sys/fs/cgroup/unified", "")
	}
}

// v1Controllers lists the enabled controllers of /proc/cgroups.
func v1Controllers() []string {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		logf("nscheck guest: %v", err)
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		// #subsys_name hierarchy num_cgroups enabled
		if f := strings.Fields(l); len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	return out
}

// openChannel opens the report UART in raw mode: 8 bits, no newline or
// flow-control translation, no echo.
// openReport opens the guest side of the report channel: the second UART
// on a PC, the virtio serial port named vm.ReportPort on arm64.
func openReport() (*os.File, error) {
	if runtime.GOARCH != "arm64" {
		return openChannel(vm.ReportUART)
	}
	// devtmpfs names the port vportNpM; sysfs has the name QEMU gave it.
	// The device may be probed a moment after its driver loaded.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil && strings.TrimSpace(string(b)) == vm.ReportPort {
				dev := "/dev/" + filepath.Base(filepath.Dir(n))
				f, err := os.OpenFile(dev, os.O_RDWR, 0)
				if err != nil {
					return nil, fmt.Errorf("open the report channel: %w", err)
				}
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("open the report channel: no virtio serial port %q (virtio_console missing?)", vm.ReportPort)
		}
	}
}

func openChannel(dev string) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open the report channel: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: TCGETS: %w", dev, err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CLOCAL
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: TCSETS: %w", dev, err)
	}
	return f, nil
}

// drain waits until everything written to the UART has been sent
// (tcdrain: TCSBRK with a non-zero argument).
func drain(f *os.File) {
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return // not a UART: a virtio port's write returns once the host has the data
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1); err != nil {
		logf("nscheck guest: drain %s: %v", f.Name(), err)
	}
}

func powerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logf("nscheck guest: power off: %v", err)
	}
	// Returning from PID 1 panics the kernel; with panic=-1 and QEMU's
	// -no-reboot that still stops the machine.
	os.Exit(1)
}

// sysctls are the namespace knobs worth reading next to a VM's report.
var sysctls = []string{
	"kernel.unprivileged_userns_clone",
	"user.max_user_namespaces",
	"kernel.apparmor_restrict_unprivileged_userns",
}

// describe is the guest's side of the report's vm section: the kernel
// command line and the namespace knobs as the kernel applied them.
func describe() *report.VM {
	v := &report.VM{Sysctls: map[string]string{}}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		v.Cmdline = strings.TrimSpace(string(b))
	}
	for _, name := range sysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
		if err == nil {
			v.Sysctls[name] = strings.TrimSpace(string(b))
		}
	}
	return v
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
