package helper

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// A helper re-executes a binary that has every action registered. That is
// /proc/self/exe by default. A binary may instead carry a lean helper binary
// (see internal/helperbin) and hand it over with UseBinary: it is then put in
// a sealed memfd once and executed through /proc/self/fd/N, so that nscheck
// stays a single file.

var (
	embedded  []byte
	exeOnce   sync.Once
	exePath   string
	exeSetErr error
)

// UseBinary makes helpers execute bin (a static helper binary built from the
// same sources) instead of /proc/self/exe. Call it from an init function.
func UseBinary(bin []byte) { embedded = bin }

// Exe is the binary helpers execute: the embedded helper when there is one
// (and it could be loaded), else SelfExe.
func Exe() string {
	if len(embedded) == 0 {
		return SelfExe
	}
	exeOnce.Do(func() { exePath, exeSetErr = loadEmbedded() })
	if exeSetErr != nil {
		return SelfExe
	}
	return exePath
}

// EmbeddedError says why the embedded helper could not be loaded (nil when
// it was, or when there is none).
func EmbeddedError() error {
	Exe()
	return exeSetErr
}

func loadEmbedded() (string, error) {
	fd, err := unix.MemfdCreate("nscheck-helper", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	for b := embedded; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("write helper to memfd: %w", err)
		}
		b = b[n:]
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("seal helper memfd: %w", err)
	}
	// Executed by path: the kernel resolves /proc/self/fd/N in the child
	// before close-on-exec closes N.
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}
