package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nscheck/nscheck/internal/initramfs"
)

// ModulesDir is where the guest finds the modules to load.
const ModulesDir = "modules"

// Initramfs builds the guest's initramfs. The kernel unpacks concatenated
// compressed archives one after the other, so the large part (nscheck as
// /init) is built and compressed once for every kernel, and each kernel's
// modules go into a small archive appended to it.
type Initramfs struct {
	base []byte
}

// NewInitramfs compresses the skeleton and the init binary, a static
// executable for arch: /dev (with the console node the kernel opens for
// init), /proc, /sys, /tmp, /init.
func NewInitramfs(initBinary string, arch Arch) (*Initramfs, error) {
	if err := CheckStatic(initBinary, arch); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(initBinary)
	if err != nil {
		return nil, fmt.Errorf("read init binary: %w", err)
	}
	base, err := gzipArchive(func(w *initramfs.Writer) error {
		for _, d := range []string{"dev", "proc", "sys", "tmp", "root", ModulesDir} {
			if err := w.Dir(d, 0o755); err != nil {
				return err
			}
		}
		if err := w.CharDev("dev/console", 0o600, 5, 1); err != nil {
			return err
		}
		return w.File("init", 0o755, bin)
	})
	if err != nil {
		return nil, err
	}
	return &Initramfs{base: base}, nil
}

// WriteFor writes the initramfs for k to path: the base archive, then k's
// modules under /modules.
func (ir *Initramfs) WriteFor(path string, k *Kernel) error {
	mods, err := gzipArchive(func(w *initramfs.Writer) error {
		for _, name := range k.ModuleNames() {
			data, err := os.ReadFile(k.Modules[name])
			if err != nil {
				return fmt.Errorf("read module: %w", err)
			}
			if err := w.File(ModulesDir+"/"+filepath.Base(k.Modules[name]), 0o644, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(append([]byte{}, ir.base...), mods...), 0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

func gzipArchive(fill func(*initramfs.Writer) error) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	w := initramfs.NewWriter(zw)
	if err := fill(w); err != nil {
		return nil, fmt.Errorf("build initramfs: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("build initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

// CheckStatic fails unless path is a statically linked ELF executable for
// arch: the guest has no dynamic loader and no libc, so a dynamically
// linked nscheck cannot be its /init.
func CheckStatic(path string, arch Arch) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("init binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != arch.ELF() {
		return fmt.Errorf("init binary %s: built for %v, the guest is %s (build it with GOARCH=%s CGO_ENABLED=0)", path, f.Machine, arch, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("init binary %s is dynamically linked (interpreter %s): build it with CGO_ENABLED=0 (make build)",
				path, bytes.TrimRight(interp, "\x00"))
		}
	}
	return nil
}
