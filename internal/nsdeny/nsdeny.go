// Package nsdeny installs a seccomp filter that denies creating and joining
// namespaces, as the default profiles of container engines do. It is the
// fault that nscheck's tests inject to check that a denied namespace is a
// named skip, never a pass or a harness error: the command's own tests
// (cmd/nscheck) and the environment zoo (internal/zoo), which run nscheck
// under it.
//
// The filter is classic BPF on struct seccomp_data, written by hand (the
// program is a dozen instructions): on x86-64, clone and unshare with any
// CLONE_NEW* flag and setns fail with the chosen errno. clone3 always fails
// with ENOSYS, because its flags are in memory a filter cannot read; libc and
// Go fall back to clone on ENOSYS, which the filter then judges. Other
// architectures' system calls pass.
package nsdeny

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NewNSFlags are the clone flags that create a namespace.
const NewNSFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// Program is the filter: clone/unshare with a CLONE_NEW* flag and setns
// return errno, clone3 ENOSYS, everything else is allowed.
func Program(errno unix.Errno) []unix.SockFilter {
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
		offArg0 = 16
	)
	fail := func(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }
	return []unix.SockFilter{
		{Code: ldW, K: offArch},
		{Code: jeq, Jt: 1, K: unix.AUDIT_ARCH_X86_64},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW}, // other arches: not judged
		{Code: ldW, K: offNr},
		{Code: jeq, Jt: 5, K: unix.SYS_CLONE3},
		{Code: jeq, Jt: 5, K: unix.SYS_SETNS},
		{Code: jeq, Jt: 1, K: unix.SYS_CLONE},
		{Code: jeq, Jt: 0, Jf: 4, K: unix.SYS_UNSHARE},
		{Code: ldW, K: offArg0},
		{Code: jset, Jt: 1, Jf: 2, K: NewNSFlags},
		{Code: ret, K: fail(unix.ENOSYS)}, // clone3
		{Code: ret, K: fail(errno)},       // setns, or CLONE_NEW* asked
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
}

// Install sets no_new_privs and installs Program(errno) on every thread of
// the calling process (SECCOMP_FILTER_FLAG_TSYNC: a Go process has many).
// The filter is inherited by children and kept across execve.
func Install(errno unix.Errno) error {
	prog := Program(errno)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp(SET_MODE_FILTER): %w", e)
	}
	return nil
}
