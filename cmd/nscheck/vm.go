package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/runner"
	"github.com/nscheck/nscheck/internal/vm"
	"github.com/nscheck/nscheck/internal/vmlinux"
)

func init() {
	register(&command{name: "vm", summary: "boot other kernels under QEMU with nscheck as init and write one report per kernel", run: vmCmd})
}

// vmRun is one `nscheck vm` invocation.
type vmRun struct {
	out      string
	base     vm.Config
	plan     vm.AccelPlan
	timeout  time.Duration
	tty      bool
	initrd   *vm.Initramfs
	tmp      string
	written  map[string]bool
	allOK    bool
	progress *os.File
	// pvh: boot the kernel's ELF through its PVH entry when it has one.
	pvh bool
}

func vmCmd(args []string) int {
	fs := newFlags("vm", "vm --kernel PATH [--kernel PATH ...] --out DIR [--append ARGS] [--accel auto|tcg|kvm] [--label-filter EXPR]")
	var kernels stringList
	fs.Var(&kernels, "kernel", "a kernel to boot: a bzImage (vmlinuz), a Debian kernel `.deb` or the directory it unpacks to (repeatable)")
	out := fs.String("out", "", "write one report per kernel to `DIR`/<kernel release>.json")
	appendArgs := fs.String("append", "", "extra kernel command line, e.g. sysctl.kernel.unprivileged_userns_clone=0")
	memory := fs.Int("memory", 512, "guest memory in `MiB`")
	cpus := fs.Int("cpus", 2, "virtual CPUs")
	cpuModel := fs.String("cpu", "", "QEMU CPU `MODEL` (default: host under KVM, "+vm.TCGCPU+" under TCG, the cheapest to emulate)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound for each kernel: boot, catalog and power-off")
	accel := fs.String("accel", vm.AccelAuto, "QEMU accelerator: auto (KVM if it works, else TCG), tcg or kvm")
	qemu := fs.String("qemu", "qemu-system-x86_64", "the QEMU binary")
	labels := fs.String("label-filter", "", "run only the properties whose labels match `EXPR` in the guest (as for run)")
	pvh := fs.Bool("pvh", true, "boot the uncompressed kernel (unpacked here from the bzImage) through its PVH entry point when it has one: the same kernel without its self-decompression, about 2s less per boot under TCG; --pvh=false boots the bzImage as a boot loader would")
	initBin := fs.String("init", "", "the static nscheck binary to run as the guest's /init (default: this nscheck, which must be statically linked)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(exitUsage, "vm: unexpected argument %q", fs.Arg(0))
	case len(kernels) == 0:
		return fail(exitUsage, "vm: name at least one --kernel")
	case *out == "":
		return fail(exitUsage, "vm: --out DIR is required")
	case *timeout <= 0 || *cpus < 1:
		return fail(exitUsage, "vm: --timeout and --cpus must be positive")
	}
	base := vm.Config{Append: *appendArgs, MemoryMB: *memory, CPUs: *cpus, CPU: *cpuModel, LabelFilter: *labels}
	if err := base.Validate(); err != nil {
		return fail(exitUsage, "vm: %v", err)
	}
	if err := (runner.Options{LabelFilter: *labels}).Validate(); err != nil {
		return fail(exitUsage, "vm: %v", err)
	}
	plan, err := vm.ChooseAccel(*accel, vm.ProbeHost())
	if err != nil {
		return fail(exitUsage, "vm: %v", err)
	}
	tmp, err := os.MkdirTemp("", "nscheck-vm-")
	if err != nil {
		return fail(exitFail, "vm: %v", err)
	}
	defer os.RemoveAll(tmp)

	// Every input is checked before anything boots.
	var opened []*vm.Kernel
	defer func() {
		for _, k := range opened {
			k.Close()
		}
	}()
	for _, src := range kernels {
		k, err := vm.OpenKernel(src, tmp)
		if err != nil {
			return fail(exitUsage, "vm: %v", err)
		}
		opened = append(opened, k)
	}
	self := *initBin == ""
	if self {
		*initBin = "/proc/self/exe" // this very nscheck becomes the guest's init
	}
	initrd, err := vm.NewInitramfs(*initBin)
	if err != nil {
		if self {
			return fail(exitUsage, "vm: this nscheck cannot be the guest's init (%v); or pass --init PATH of a static nscheck", err)
		}
		return fail(exitUsage, "vm: %v", err)
	}
	if base.QEMU, err = exec.LookPath(*qemu); err != nil {
		return fail(exitUsage, "vm: %s not found (apt-get install qemu-system-x86)", *qemu)
	}
	base.BIOS = vm.FindQboot(base.QEMU)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(exitUsage, "vm: --out: %v", err)
	}
	r := &vmRun{out: *out, base: base, plan: plan, timeout: *timeout, initrd: initrd, tmp: tmp,
		written: map[string]bool{}, allOK: true, progress: os.Stderr, tty: isTerminal(os.Stderr), pvh: *pvh}
	if plan.Note != "" {
		fmt.Fprintf(os.Stderr, "nscheck: vm: %s\n", plan.Note)
	}
	// Ctrl-C stops the boot in progress (QEMU is killed and reaped) and
	// writes no report for it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for i, k := range opened {
		if err := r.boot(ctx, k, i); err != nil {
			return fail(exitFail, "vm: %v", err)
		}
	}
	if !r.allOK {
		return exitFail
	}
	return exitOK
}

// boot boots one kernel (falling back from KVM to TCG once if KVM fails)
// and writes its report, a report-level error when it did not produce one.
func (r *vmRun) boot(ctx context.Context, k *vm.Kernel, i int) error {
	cfg := r.base
	cfg.Kernel = k.Image
	cfg.Initrd = filepath.Join(r.tmp, fmt.Sprintf("initrd-%d.cpio.gz", i))
	if err := r.initrd.WriteFor(cfg.Initrd, k); err != nil {
		return err
	}
	defer os.Remove(cfg.Initrd)
	entry := vm.EntryBzImage
	if r.pvh {
		elf := filepath.Join(r.tmp, fmt.Sprintf("vmlinux-%d", i))
		if _, err := vmlinux.ExtractFile(k.Image, elf); err != nil {
			fmt.Fprintf(os.Stderr, "nscheck: vm: %s: booting the bzImage: %v\n", k.Release, err)
		} else {
			defer os.Remove(elf)
			cfg.Kernel, entry = elf, vm.EntryPVH
		}
	}
	start := time.Now()
	var (
		out *vm.Outcome
		err error
	)
	for {
		cfg.Accel = r.plan.Try[0]
		r.status(k.Release, start, "booting (%s)", cfg.Accel)
		opts := vm.BootOptions{Timeout: r.timeout, TempDir: r.tmp, Running: func() {
			r.status(k.Release, start, "running the catalog (%s)", cfg.Accel)
		}}
		if len(r.plan.Try) > 1 {
			opts.HelloTimeout = min(r.timeout, 30*time.Second)
		}
		out, err = vm.Boot(ctx, cfg, opts)
		if ctx.Err() != nil {
			r.endStatus()
			return fmt.Errorf("%s: interrupted", k.Release)
		}
		var be *vm.BootError
		if err != nil && errors.As(err, &be) && !be.Started && len(r.plan.Try) > 1 {
			r.endStatus()
			fmt.Fprintf(os.Stderr, "nscheck: vm: KVM failed (%s): falling back to TCG\n", be.Reason)
			r.plan.Try = r.plan.Try[1:] // and for the kernels after this one
			start = time.Now()
			continue
		}
		break
	}
	var rep *report.Report
	var be *vm.BootError
	switch {
	case err == nil:
		rep = out.Report
		if rep.VM == nil {
			rep.VM = &report.VM{}
		}
		rep.VM.BootMS, rep.VM.TotalMS = out.Hello.Milliseconds(), out.Total.Milliseconds()
	case errors.As(err, &be):
		rep = failedBoot(k, be, time.Since(start))
	default:
		return err
	}
	rep.VM.Image, rep.VM.Accel, rep.VM.Entry = k.Source, cfg.Accel, entry
	rep.VM.CPU, rep.VM.Firmware = cfg.CPUModel(), cfg.Firmware()
	path := r.reportPath(rep.Kernel.Release)
	if werr := report.WriteFile(path, rep); werr != nil {
		return werr
	}
	if !rep.OK() {
		r.allOK = false
	}
	if be != nil {
		r.status(k.Release, start, "FAILED: %s -> %s", be.Reason, path)
		r.endStatus()
		for _, l := range be.Console[max(0, len(be.Console)-5):] {
			fmt.Fprintf(os.Stderr, "    | %s\n", l)
		}
		return nil
	}
	s := rep.Summary
	r.status(k.Release, start, "done: %d passed, %d failed, %d skipped (init after %.1fs) -> %s",
		s.Passed, s.Failed, s.Skipped, out.Hello.Seconds(), path)
	r.endStatus()
	return nil
}

// failedBoot is the report of a kernel that gave none: a report-level error
// with the reason and the last console lines.
func failedBoot(k *vm.Kernel, be *vm.BootError, took time.Duration) *report.Report {
	rep := &report.Report{
		Schema: report.Schema,
		Kernel: report.Kernel{Release: k.Release, Version: report.NormalizeVersion(k.Release), Machine: "x86_64"},
		// The guest runs the catalog as root (PID 1's child); the mode it
		// would have had, though it never got there.
		Privilege:  report.Privilege{EUID: 0, Mode: "root"},
		StartedAt:  time.Now().Add(-took).UTC().Truncate(time.Millisecond),
		DurationMS: took.Milliseconds(),
		Results:    []report.Result{},
		Errors:     []string{"boot: " + be.Reason},
		VM:         &report.VM{TotalMS: took.Milliseconds()},
	}
	for _, l := range be.Console {
		rep.Errors = append(rep.Errors, "console: "+l)
	}
	return rep
}

// reportPath is DIR/<release>.json, with a suffix when this run already
// wrote that release (the same kernel booted twice).
func (r *vmRun) reportPath(release string) string {
	name := strings.ReplaceAll(release, "/", "_")
	if name == "" {
		name = "unknown"
	}
	for i := 2; r.written[name]; i++ {
		name = fmt.Sprintf("%s-%d", strings.ReplaceAll(release, "/", "_"), i)
	}
	r.written[name] = true
	return filepath.Join(r.out, name+".json")
}

// status prints the kernel's progress: rewritten in place on a terminal,
// one line per step otherwise.
func (r *vmRun) status(release string, start time.Time, format string, args ...any) {
	line := fmt.Sprintf("nscheck: vm: %s: %5.1fs %s", release, time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	if r.tty {
		fmt.Fprintf(r.progress, "\r\x1b[K%s", line)
		return
	}
	fmt.Fprintln(r.progress, line)
}

func (r *vmRun) endStatus() {
	if r.tty {
		fmt.Fprintln(r.progress)
	}
}
