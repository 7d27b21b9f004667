package vm

import (
	"debug/elf"
	"fmt"
)

// Arch is a guest architecture, named as Debian names it.
type Arch string

// The architectures nscheck vm boots.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// ParseArch resolves --arch ("" for amd64; x86_64 and aarch64 are accepted
// too).
func ParseArch(s string) (Arch, error) {
	switch s {
	case "", "amd64", "x86_64":
		return AMD64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("--arch %q: want amd64 or arm64", s)
}

// QEMU is the emulator of a.
func (a Arch) QEMU() string {
	if a == ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// QEMUPackage is the Debian package that has a.QEMU().
func (a Arch) QEMUPackage() string {
	if a == ARM64 {
		return "qemu-system-arm"
	}
	return "qemu-system-x86"
}

// Machine is uname's name of a (report.Kernel.Machine).
func (a Arch) Machine() string {
	if a == ARM64 {
		return "aarch64"
	}
	return "x86_64"
}

// ELF is the ELF machine of a's executables (the guest's /init).
func (a Arch) ELF() elf.Machine {
	if a == ARM64 {
		return elf.EM_AARCH64
	}
	return elf.EM_X86_64
}

// Console is the guest's console device: the first 8250 UART on a PC, the
// PL011 on arm64's virt board.
func (a Arch) Console() string {
	if a == ARM64 {
		return "ttyAMA0"
	}
	return "ttyS0"
}
