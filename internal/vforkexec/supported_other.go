//go:build !amd64 && !arm64

package vforkexec

import "golang.org/x/sys/unix"

// supported is false where this package has no vfork trampoline: Eligible
// says no and callers use os/exec.
const supported = false

func vforkClone(flags uintptr, pidfd *int32) (uintptr, unix.Errno) { return 0, unix.ENOSYS }
