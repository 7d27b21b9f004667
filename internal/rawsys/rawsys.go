// Package rawsys is what code running in a forked copy of a Go process may
// call before it execs (or instead of exec): raw system calls from nosplit
// functions, and the NUL-terminated strings and pointer arrays they take,
// prepared before the fork.
//
// Such a child shares or copies the parent's memory, but not its runtime:
// it has a single thread, no scheduler and possibly the parent's very
// stack, so it may not allocate, grow its stack, enter the scheduler or
// take a signal. internal/forkchain (nested namespaces without exec) and
// internal/vforkexec (helpers' vfork, which may map its own ids) run such code; the
// standard library's fork-and-exec child keeps to the same rules.
package rawsys

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	// AllSignals is a signal set that blocks every signal that can be
	// blocked (rt_sigprocmask with an 8-byte set).
	AllSignals = ^uint64(0)
	// AtFDCWD is AT_FDCWD as a variable: a negative constant does not
	// convert to uintptr.
	AtFDCWD = unix.AT_FDCWD
)

// Keep owns the memory that prepared pointers point into. The child reads
// it through uintptrs, which the garbage collector does not follow: the
// Keep must stay reachable until the child has exec'd or exited.
type Keep struct {
	bufs [][]byte
	ptrs [][]uintptr
}

// CString is s, NUL-terminated.
func (k *Keep) CString(s string) uintptr {
	b := append([]byte(s), 0)
	k.bufs = append(k.bufs, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// Bytes is s without a terminator, and its length.
func (k *Keep) Bytes(s string) (uintptr, uintptr) {
	if s == "" {
		return 0, 0
	}
	b := []byte(s)
	k.bufs = append(k.bufs, b)
	return uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))
}

// CStrings is a NULL-terminated array of NUL-terminated strings, as
// execve takes argv and envp.
func (k *Keep) CStrings(list []string) uintptr {
	ptrs := make([]uintptr, 0, len(list)+1)
	for _, s := range list {
		ptrs = append(ptrs, k.CString(s))
	}
	ptrs = append(ptrs, 0)
	k.ptrs = append(k.ptrs, ptrs)
	return uintptr(unsafe.Pointer(&ptrs[0]))
}

// Syscall is syscall.RawSyscall6 (nosplit, no scheduler) with four
// arguments.
//
//go:norace
//go:nosplit
func Syscall(trap, a1, a2, a3, a4 uintptr) (uintptr, uintptr, unix.Errno) {
	return syscall.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
}

// WriteFile writes n bytes at b to the NUL-terminated path, once (what
// /proc's id map and setgroups files take).
//
//go:norace
//go:nosplit
func WriteFile(path, b, n uintptr) unix.Errno {
	fd, _, errno := Syscall(unix.SYS_OPENAT, uintptr(AtFDCWD), path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if errno != 0 {
		return errno
	}
	_, _, errno = Syscall(unix.SYS_WRITE, fd, b, n, 0)
	Syscall(unix.SYS_CLOSE, fd, 0, 0, 0)
	return errno
}

// Exit ends the calling process (its thread group) with code.
//
//go:norace
//go:nosplit
func Exit(code uintptr) {
	for {
		Syscall(unix.SYS_EXIT_GROUP, code, 0, 0, 0)
	}
}
