package helper

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// A helper re-executes a binary that has every action registered. That is
// /proc/self/exe by default. A binary may instead hand over another image
// with UseImage: the lean helper binary it carries (UseBinary, see
// internal/helperbin), or a copy of itself that starts faster as a helper
// (cmd/nscheck without the lean helper: internal/initorder). The image is
// written once, on the first spawn, into an unnamed file (loadImage) and
// executed through /proc/self/fd/N, so that nscheck stays a single file.

var (
	image     func(*os.File) error
	imageWhat string
	exeOnce   sync.Once
	exeFile   *os.File // the memfd, kept open (and referenced) for the process's life
	exePath   string
	exeSetErr error
)

// UseBinary makes helpers execute bin (a static helper binary built from the
// same sources) instead of /proc/self/exe. Call it from an init function.
func UseBinary(bin []byte) {
	UseImage("the embedded lean helper binary", func(w *os.File) error {
		_, err := w.Write(bin)
		return err
	})
}

// UseImage makes helpers execute the binary that write puts into an empty
// file (what names it for `nscheck version`), instead of /proc/self/exe.
// write runs once, on the first spawn; when it fails, helpers execute
// /proc/self/exe and ImageError says why. Call it from an init function.
func UseImage(what string, write func(*os.File) error) { imageWhat, image = what, write }

// Exe is the binary helpers execute: the image UseImage gave (when it
// could be loaded), else SelfExe.
func Exe() string {
	if image == nil {
		return SelfExe
	}
	exeOnce.Do(func() { exePath, exeSetErr = loadImage() })
	if exeSetErr != nil {
		return SelfExe
	}
	return exePath
}

// Image says which image helpers execute ("" for /proc/self/exe) and, when
// one was given but could not be loaded, why.
func Image() (what string, err error) {
	if Exe() == SelfExe {
		return "", exeSetErr
	}
	return imageWhat, nil
}

// loadImage writes the image into an unnamed file (O_TMPFILE) in the
// executable's own directory, where it pages in as the executable does
// (a 20 MB binary executed from a memfd, tmpfs's 4 KiB pages, took 3-4 ms
// more a helper than from ext4 here), or else into a sealed memfd.
func loadImage() (string, error) {
	if exe, err := os.Executable(); err == nil {
		if path, err := diskImage(filepath.Dir(exe)); err == nil {
			return path, nil
		}
	}
	fd, err := unix.MemfdCreate("nscheck-helper", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nscheck-helper")
	if err := image(f); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s to a memfd: %w", imageWhat, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return "", fmt.Errorf("seal the helper memfd: %w", err)
	}
	exeFile = f
	// Executed by path: the kernel resolves /proc/self/fd/N in the child
	// before close-on-exec closes N.
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}

// diskImage writes the image into an unnamed file in dir and keeps it open
// read-only (a file open for writing cannot be executed): nothing is left
// behind, the file goes with the process.
func diskImage(dir string) (string, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o755)
	if err != nil {
		return "", fmt.Errorf("O_TMPFILE in %s: %w", dir, err)
	}
	w := os.NewFile(uintptr(fd), "nscheck-helper")
	defer w.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Flags&unix.ST_NOEXEC != 0 {
		return "", fmt.Errorf("%s: mounted noexec (or statfs: %v)", dir, err)
	}
	if err := image(w); err != nil {
		return "", fmt.Errorf("write %s: %w", imageWhat, err)
	}
	r, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("reopen the helper image: %w", err)
	}
	exeFile = r
	return fmt.Sprintf("/proc/self/fd/%d", r.Fd()), nil
}
