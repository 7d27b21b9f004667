package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/vmlinux"
)

// Source is one kernel the user named: the image or package (--kernel) and
// the packages that hold its modules (--modules after it).
type Source struct {
	Kernel  string
	Modules []string
}

// Plan is one `nscheck vm` run as the command line asked for it.
type Plan struct {
	Sources []Source
	// Out is the directory of the reports, one per kernel.
	Out string
	// Base is the QEMU configuration every kernel shares (Append,
	// MemoryMB, CPUs, CPU, LabelFilter); Run fills in the rest.
	Base Config
	// Accel is --accel: AccelAuto, AccelTCG or AccelKVM.
	Accel string
	// Arch, when set, is the architecture every kernel must be (--arch);
	// else the first kernel's.
	Arch Arch
	// QEMU is the emulator binary ("" for the architecture's own).
	QEMU string
	// Init is the static nscheck that becomes the guest's /init ("" for
	// the running nscheck).
	Init string
	// Timeout bounds each kernel: boot, catalog and power-off.
	Timeout time.Duration
	// PVH boots an x86 kernel's uncompressed ELF through its PVH entry
	// when it has one.
	PVH bool
	// Progress gets one status line per step (rewritten in place when TTY).
	Progress io.Writer
	TTY      bool
}

// InputError is a run that stopped before booting anything because of what
// the user gave it: a missing file, a package without a kernel, modules of
// another release, an init that cannot be one (the command's exit 2).
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// Run boots every kernel of p in turn and writes its report to p.Out. Every
// input is opened and checked before the first boot. ok is false when a
// report is not OK (a property failed, a run error, a boot that gave no
// report); err is an input error (*InputError), an interruption or a
// report that could not be written.
func Run(ctx context.Context, p Plan) (ok bool, err error) {
	if err := p.Base.Validate(); err != nil {
		return false, &InputError{Err: err}
	}
	if len(p.Sources) == 0 {
		return false, inputErr("name at least one --kernel")
	}
	plan, err := ChooseAccel(p.Accel, ProbeHost())
	if err != nil {
		return false, &InputError{Err: err}
	}
	tmp, err := os.MkdirTemp("", "nscheck-vm-")
	if err != nil {
		return false, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(tmp)

	var opened []*Kernel
	defer func() {
		for _, k := range opened {
			k.Close()
		}
	}()
	for _, src := range p.Sources {
		k, err := OpenKernel(src, tmp)
		if err != nil {
			return false, &InputError{Err: err}
		}
		opened = append(opened, k)
	}
	arch := p.Arch
	if arch == "" {
		arch = opened[0].Arch
	}
	for _, k := range opened {
		if k.Arch != arch {
			return false, inputErr("kernel %s is an %s kernel, this run boots %s (--arch)", k.Source, k.Arch, arch)
		}
	}
	self := p.Init == ""
	if self {
		p.Init = "/proc/self/exe" // this very nscheck becomes the guest's init
	}
	initrd, err := NewInitramfs(p.Init, arch)
	if err != nil {
		if self {
			return false, inputErr("this nscheck cannot be the guest's init (%v); or pass --init PATH of a static nscheck for %s", err, arch)
		}
		return false, &InputError{Err: err}
	}
	base := p.Base
	base.Arch = arch
	qemu := p.QEMU
	if qemu == "" {
		qemu = arch.QEMU()
	}
	if base.QEMU, err = exec.LookPath(qemu); err != nil {
		return false, inputErr("%s not found (apt-get install %s)", qemu, arch.QEMUPackage())
	}
	if arch == AMD64 {
		base.BIOS = FindQboot(base.QEMU)
	}
	if err := os.MkdirAll(p.Out, 0o755); err != nil {
		return false, inputErr("--out: %v", err)
	}
	if plan.Note != "" {
		fmt.Fprintf(p.Progress, "nscheck: vm: %s\n", plan.Note)
	}
	r := &run{Plan: p, base: base, plan: plan, initrd: initrd, tmp: tmp, written: map[string]bool{}, allOK: true}
	for i, k := range opened {
		if err := r.boot(ctx, k, i); err != nil {
			return false, err
		}
	}
	return r.allOK, nil
}

// run is the state of one Run across its kernels.
type run struct {
	Plan
	base    Config
	plan    AccelPlan
	initrd  *Initramfs
	tmp     string
	written map[string]bool
	allOK   bool
}

// boot boots one kernel (falling back from KVM to TCG once if KVM fails)
// and writes its report, a report-level error when it did not produce one.
// tcgHello is how long a kernel under emulation may take to start init:
// seconds normally, a minute on a loaded machine; past it the boot is
// stalled, and tried once more.
const tcgHello = 3 * time.Minute

func (r *run) boot(ctx context.Context, k *Kernel, i int) error {
	cfg := r.base
	cfg.Kernel = k.Image
	cfg.Initrd = filepath.Join(r.tmp, fmt.Sprintf("initrd-%d.cpio.gz", i))
	if err := r.initrd.WriteFor(cfg.Initrd, k); err != nil {
		return err
	}
	defer os.Remove(cfg.Initrd)
	entry := EntryBzImage
	if k.Arch != AMD64 {
		entry = EntryImage
	} else if r.PVH {
		elf := filepath.Join(r.tmp, fmt.Sprintf("vmlinux-%d", i))
		if _, err := vmlinux.ExtractFile(k.Image, elf); err != nil {
			fmt.Fprintf(r.Progress, "nscheck: vm: %s: booting the bzImage: %v\n", k.Release, err)
		} else {
			defer os.Remove(elf)
			cfg.Kernel, entry = elf, EntryPVH
		}
	}
	start := time.Now()
	var (
		out     *Outcome
		err     error
		retried bool
	)
	for {
		cfg.Accel = r.plan.Try[0]
		r.status(k.Release, start, "booting (%s)", cfg.Accel)
		opts := BootOptions{Timeout: r.Timeout, TempDir: r.tmp, Running: func() {
			r.status(k.Release, start, "running the catalog (%s)", cfg.Accel)
		}}
		if len(r.plan.Try) > 1 {
			opts.HelloTimeout = min(r.Timeout, 30*time.Second)
		} else {
			opts.HelloTimeout = min(r.Timeout, tcgHello)
		}
		out, err = Boot(ctx, cfg, opts)
		if ctx.Err() != nil {
			r.endStatus()
			return fmt.Errorf("%s: interrupted", k.Release)
		}
		var be *BootError
		if err != nil && errors.As(err, &be) && !be.Started && len(r.plan.Try) > 1 {
			r.endStatus()
			fmt.Fprintf(r.Progress, "nscheck: vm: KVM failed (%s): falling back to TCG\n", be.Reason)
			r.plan.Try = r.plan.Try[1:] // and for the kernels after this one
			start = time.Now()
			continue
		}
		if err != nil && errors.As(err, &be) && !be.Started && !retried && ctx.Err() == nil {
			// Emulation stalls now and then before init (seen with 6.1
			// under TCG, hanging right after it switched to the hpet
			// clocksource, and booting in 4 s the next time): one more
			// try. A kernel that cannot boot fails both.
			retried = true
			r.endStatus()
			fmt.Fprintf(r.Progress, "nscheck: vm: %s: %s: booting it once more\n", k.Release, be.Reason)
			start = time.Now()
			continue
		}
		break
	}
	var rep *report.Report
	var be *BootError
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
			fmt.Fprintf(r.Progress, "    | %s\n", l)
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
func failedBoot(k *Kernel, be *BootError, took time.Duration) *report.Report {
	rep := &report.Report{
		Schema: report.Schema,
		Kernel: report.Kernel{Release: k.Release, Version: report.NormalizeVersion(k.Release), Machine: k.Arch.Machine()},
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
func (r *run) reportPath(release string) string {
	base := strings.ReplaceAll(release, "/", "_")
	if base == "" {
		base = "unknown"
	}
	name := base
	for i := 2; r.written[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	r.written[name] = true
	return filepath.Join(r.Out, name+".json")
}

// status prints the kernel's progress: rewritten in place on a terminal,
// one line per step otherwise.
func (r *run) status(release string, start time.Time, format string, args ...any) {
	line := fmt.Sprintf("nscheck: vm: %s: %5.1fs %s", release, time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	if r.TTY {
		fmt.Fprintf(r.Progress, "\r\x1b[K%s", line)
		return
	}
	fmt.Fprintln(r.Progress, line)
}

func (r *run) endStatus() {
	if r.TTY {
		fmt.Fprintln(r.Progress)
	}
}
