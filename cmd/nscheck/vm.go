package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/internal/runner"
	"github.com/nscheck/nscheck/internal/vm"
)

func init() {
	register(&command{name: "vm", summary: "boot other kernels under QEMU with nscheck as init and write one report per kernel", run: vmCmd})
}

// sourcesFlag collects --kernel and the --modules that follow it.
type sourcesFlag struct{ list []vm.Source }

type kernelFlag struct{ *sourcesFlag }
type modulesFlag struct{ *sourcesFlag }

func (f kernelFlag) String() string { return "" }
func (f kernelFlag) Set(v string) error {
	f.list = append(f.list, vm.Source{Kernel: v})
	return nil
}
func (f modulesFlag) String() string { return "" }
func (f modulesFlag) Set(v string) error {
	if len(f.list) == 0 {
		return errors.New("--modules belongs to the --kernel before it")
	}
	last := &f.list[len(f.list)-1]
	last.Modules = append(last.Modules, v)
	return nil
}

// vmCmd parses the flags of `nscheck vm`; internal/vm boots.
func vmCmd(args []string) int {
	fs := newFlags("vm", "vm --kernel PATH [--modules PATH ...] [--kernel PATH ...] --out DIR [--arch amd64|arm64] [--append ARGS] [--accel auto|tcg|kvm] [--cgroup v2+named|v2|hybrid|v1] [--label-filter EXPR]")
	src := &sourcesFlag{}
	fs.Var(kernelFlag{src}, "kernel", "a kernel to boot: a bzImage or arm64 Image, a kernel package (.deb, .rpm, .pkg.tar.zst) or a directory in the boot/vmlinuz-<release> or usr/lib/modules/<release>/vmlinuz layout (repeatable)")
	fs.Var(modulesFlag{src}, "modules", "a package or directory with the modules of the --kernel before it, e.g. Debian's linux-modules-<release> or Fedora's kernel-modules (repeatable)")
	out := fs.String("out", "", "write one report per kernel to `DIR`/<kernel release>.json")
	appendArgs := fs.String("append", "", "extra kernel command line, e.g. sysctl.kernel.unprivileged_userns_clone=0")
	memory := fs.Int("memory", 512, "guest memory in `MiB`")
	cpus := fs.Int("cpus", 2, "virtual CPUs")
	cpuModel := fs.String("cpu", "", "QEMU CPU `MODEL` (default: host under KVM, "+vm.TCGCPU+" under TCG, the cheapest to emulate; max on arm64)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound for each kernel: boot, catalog and power-off")
	accel := fs.String("accel", vm.AccelAuto, "QEMU accelerator: auto (KVM if it works, else TCG), tcg or kvm")
	arch := fs.String("arch", "", "the kernels' architecture, amd64 or arm64 (default: what the first kernel is); it picks QEMU and the machine")
	qemu := fs.String("qemu", "", "the QEMU binary (default: qemu-system-x86_64, qemu-system-aarch64 for arm64)")
	cgroup := fs.String("cgroup", vm.CgroupNamed, "the guest's cgroup `LAYOUT`: v2+named (cgroup2 and a named v1 hierarchy, which the CVE-2022-0492 check needs), v2 (cgroup2 only), hybrid (systemd's: controllers on v1 hierarchies, cgroup2 at /sys/fs/cgroup/unified) or v1 (a legacy host: controllers on v1 hierarchies, no cgroup2)")
	labels := fs.String("label-filter", "", "run only the properties whose labels match `EXPR` in the guest (as for run)")
	pvh := fs.Bool("pvh", true, "boot the uncompressed kernel (unpacked here from the bzImage) through its PVH entry point when it has one: the same kernel without its self-decompression, about 2s less per boot under TCG; --pvh=false boots the bzImage as a boot loader would")
	initBin := fs.String("init", "", "the static nscheck binary to run as the guest's /init (default: this nscheck, which must be statically linked and of the guest's architecture)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(exitUsage, "vm: unexpected argument %q", fs.Arg(0))
	case len(src.list) == 0:
		return fail(exitUsage, "vm: name at least one --kernel")
	case *out == "":
		return fail(exitUsage, "vm: --out DIR is required")
	case *timeout <= 0 || *cpus < 1:
		return fail(exitUsage, "vm: --timeout and --cpus must be positive")
	}
	if err := (runner.Options{LabelFilter: *labels}).Validate(); err != nil {
		return fail(exitUsage, "vm: %v", err)
	}
	a, err := vm.ParseArch(*arch)
	if err != nil {
		return fail(exitUsage, "vm: %v", err)
	}
	p := vm.Plan{
		Sources: src.list, Out: *out, Accel: *accel, QEMU: *qemu, Init: *initBin,
		Timeout: *timeout, PVH: *pvh, Progress: os.Stderr, TTY: isTerminal(os.Stderr),
		Base: vm.Config{Append: *appendArgs, MemoryMB: *memory, CPUs: *cpus, CPU: *cpuModel, LabelFilter: *labels, Cgroup: *cgroup},
	}
	if *arch != "" {
		p.Arch = a
	}
	// Ctrl-C stops the boot in progress (QEMU is killed and reaped) and
	// writes no report for it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := vm.Run(ctx, p)
	var ie *vm.InputError
	switch {
	case errors.As(err, &ie):
		return fail(exitUsage, "vm: %v", err)
	case err != nil:
		return fail(exitFail, "vm: %v", err)
	case !ok:
		return exitFail
	}
	return exitOK
}
