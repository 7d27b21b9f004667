package vforkexec

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/rawsys"
)

// spawn blocks every signal on this thread (no Go handler may run in the
// child, which shares this thread's stack and TLS), clones, and restores
// the mask. It returns in the parent only.
//
//go:norace
//go:nosplit
func spawn(p *plan) (uintptr, unix.Errno) {
	rawsys.Syscall(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&rawsys.AllSignals)), uintptr(unsafe.Pointer(&p.oldMask)), 8)
	pid, errno := start(p)
	rawsys.Syscall(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&p.oldMask)), 0, 8)
	return pid, errno
}

// start clones. The parent returns at once: the child ran in this frame
// and may have written it, and only vforkClone's results (stored by the
// parent after it woke) are its own. The child never returns.
//
//go:noinline
//go:norace
//go:nosplit
func start(p *plan) (uintptr, unix.Errno) {
	pid, errno := vforkClone(p.flags, &p.pidfd)
	if errno != 0 || pid != 0 {
		return pid, errno
	}
	child(p)
	return 0, 0
}

// child maps its ids (in a new user namespace), arms PR_SET_PDEATHSIG
// (unless detached), moves the files to fds 0..n-1,
// resets the signal state and execs.
//
//go:norace
//go:nosplit
func child(p *plan) {
	// The parent as this child sees it, read before PR_SET_PDEATHSIG is
	// armed and compared after: a parent that died in between has left us
	// to another. Both reads are the child's own view (0 when the parent
	// is outside a new PID namespace); the parent's getpid() is not
	// compared, since a kernel whose PID namespaces are broken (the very
	// thing the catalog tests) may answer it in another namespace's terms.
	ppid, _, _ := rawsys.Syscall(unix.SYS_GETPPID, 0, 0, 0, 0)
	if p.mapIDs {
		mapIDs(p)
	}
	if p.pdeathsig {
		if _, _, errno := rawsys.Syscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0); errno != 0 {
			fail(p, stepPdeathsig, errno)
		}
		if now, _, _ := rawsys.Syscall(unix.SYS_GETPPID, 0, 0, 0, 0); now != ppid {
			fail(p, stepParentGone, unix.ESRCH)
		}
	}
	// Two passes, so that a source fd below n is not overwritten before
	// it is moved: first above n (close-on-exec), then into place.
	for i := uintptr(0); i < p.nfiles; i++ {
		fd, _, errno := rawsys.Syscall(unix.SYS_FCNTL, p.files[i], unix.F_DUPFD_CLOEXEC, p.nfiles, 0)
		if errno != 0 {
			fail(p, stepDupFD, errno)
		}
		p.tmp[i] = fd
	}
	for i := uintptr(0); i < p.nfiles; i++ {
		if _, _, errno := rawsys.Syscall(unix.SYS_DUP3, p.tmp[i], i, 0, 0); errno != 0 {
			fail(p, stepDupFD, errno)
		}
	}
	resetHandlers(p)
	rawsys.Syscall(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&p.oldMask)), 0, 8)
	_, _, errno := rawsys.Syscall(unix.SYS_EXECVE, p.path, p.argv, p.envp, 0)
	fail(p, stepExec, errno)
}

// mapIDs maps root to the caller's uid and gid in the child's new user
// namespace: the one-id map a process may write for itself.
//
//go:norace
//go:nosplit
func mapIDs(p *plan) {
	// setgroups must be denied before an unprivileged gid map.
	if errno := rawsys.WriteFile(p.sgPath, p.deny, p.denyLen); errno != 0 {
		fail(p, stepSetgroups, errno)
	}
	if errno := rawsys.WriteFile(p.gidPath, p.gidLine, p.gidLen); errno != 0 {
		fail(p, stepGIDMap, errno)
	}
	if errno := rawsys.WriteFile(p.uidPath, p.uidLine, p.uidLen); errno != 0 {
		fail(p, stepUIDMap, errno)
	}
}

// resetHandlers sets every caught signal to its default action, as execve
// will, but before the mask is restored: a signal in between must not run
// the parent's Go handler on the parent's stack. Ignored signals stay
// ignored, as they do across execve.
//
//go:norace
//go:nosplit
func resetHandlers(p *plan) {
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig == uintptr(unix.SIGKILL) || sig == uintptr(unix.SIGSTOP) {
			continue
		}
		_, _, errno := rawsys.Syscall(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&p.dfl)), uintptr(unsafe.Pointer(&p.old)), 8)
		if errno == 0 && p.old.handler == p.ign.handler {
			rawsys.Syscall(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&p.ign)), 0, 8)
		}
	}
}

// fail records the step and errno for the parent (they share memory) and
// exits.
//
//go:norace
//go:nosplit
func fail(p *plan, step uintptr, errno unix.Errno) {
	p.step = step
	p.errno = errno
	rawsys.Exit(127)
}
