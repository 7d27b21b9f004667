// Package vforkexec starts nscheck's helpers: a clone with the helper's
// new namespaces that shares this process's memory until it execs
// (CLONE_VM|CLONE_VFORK, as posix_spawn does), and, when one of them is a
// user namespace whose root is the caller, maps the child's own ids the
// way `unshare --map-root-user` does (setgroups denied) before the exec.
//
// It exists for speed: nscheck spawns a helper per check and per control,
// and the kernel's floor for one is about 2 ms here.
//   - os/exec cannot vfork a child that gets a user namespace: its parent
//     writes the child's id maps while the child waits, so the child must
//     not share the parent's memory; the parent's page tables are copied at
//     every such spawn, and the parent then takes a copy-on-write fault on
//     every page it writes. The one mapping a process may write for
//     itself, its own uid and gid as root, needs no parent at all.
//   - For the other helpers os/exec does vfork, but pays per start for
//     what a helper does not need: two opens of /dev/null, a pipe and a
//     blocking read to learn whether the exec succeeded (here the child's
//     failure is in the memory it shares with the parent), environment
//     deduplication. That is 0.15 ms of a 3.5 ms spawn.
//
// Credentials, id maps the parent must write, and CLONE_NEWTIME (which
// clone(2) cannot express, and which some kernels refuse with CLONE_VM)
// are left to os/exec: see Eligible.
//
// Between the clone and the exec the child runs on the parent's stack and
// obeys the rules of internal/rawsys. The parent blocks every signal
// around the clone; the child resets the signal handlers the runtime
// installed (which execve would reset anyway) and restores the mask just
// before it execs, so the program starts with the caller's mask.
package vforkexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/rawsys"
)

// Attr is what to start and how.
type Attr struct {
	// Path is the program to execute (absolute, or /proc/self/fd/N).
	Path string
	Argv []string
	Env  []string
	// Files become the child's fds 0, 1, 2, ... in order; none may be
	// nil.
	Files []*os.File
	// Cloneflags are the namespaces to create. With CLONE_NEWUSER the
	// child maps root to the caller's effective uid and gid.
	Cloneflags uintptr
	// Detached leaves out the parent-death signal: the child outlives
	// this process.
	Detached bool
}

// Eligible reports whether Start can create a child with these flags, id
// maps and credential, on an architecture this package supports: no
// CLONE_NEWTIME, no credential change, and either no user namespace and no
// maps, or a new user namespace mapping root to the caller's effective uid
// and gid (one id each).
func Eligible(flags uintptr, uids, gids []syscall.SysProcIDMap, cred *syscall.Credential) bool {
	if !supported || flags&unix.CLONE_NEWTIME != 0 || cred != nil {
		return false
	}
	if flags&unix.CLONE_NEWUSER == 0 {
		return uids == nil && gids == nil
	}
	return rootOnly(uids, os.Geteuid()) && rootOnly(gids, os.Getegid())
}

func rootOnly(m []syscall.SysProcIDMap, id int) bool {
	return len(m) == 1 && m[0] == syscall.SysProcIDMap{ContainerID: 0, HostID: id, Size: 1}
}

// Steps of the child before exec, which a failure names.
const (
	stepNone = iota
	stepSetgroups
	stepGIDMap
	stepUIDMap
	stepPdeathsig
	stepParentGone
	stepDupFD
	stepExec
)

var stepNames = [...]string{
	stepSetgroups:  "write /proc/self/setgroups",
	stepGIDMap:     "write /proc/self/gid_map",
	stepUIDMap:     "write /proc/self/uid_map",
	stepPdeathsig:  "prctl(PR_SET_PDEATHSIG)",
	stepParentGone: "the parent died before the child started",
	stepDupFD:      "dup the child's fds",
	stepExec:       "execve",
}

// maxFiles bounds Attr.Files: the child's fds are prepared in fixed arrays.
const maxFiles = 8

// sigaction is the kernel's struct sigaction on amd64 and arm64.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// plan is everything the child reads, prepared before the clone, and what
// it writes back when it fails (the parent reads it once the vfork
// returns: they share memory).
type plan struct {
	flags     uintptr
	mapIDs    bool
	pidfd     int32
	pdeathsig bool
	path      uintptr
	argv      uintptr
	envp      uintptr
	nfiles    uintptr
	files     [maxFiles]uintptr
	tmp       [maxFiles]uintptr
	sgPath    uintptr
	gidPath   uintptr
	uidPath   uintptr
	deny      uintptr
	denyLen   uintptr
	gidLine   uintptr
	gidLen    uintptr
	uidLine   uintptr
	uidLen    uintptr
	oldMask   uint64
	dfl, ign  sigaction
	old       sigaction

	// Written by a child that failed.
	step  uintptr
	errno unix.Errno

	keep rawsys.Keep
}

func newPlan(a Attr) (*plan, error) {
	if a.Cloneflags&unix.CLONE_NEWTIME != 0 {
		return nil, errors.New("vforkexec: CLONE_NEWTIME needs clone3 (use os/exec)")
	}
	if len(a.Files) > maxFiles {
		return nil, fmt.Errorf("vforkexec: %d files, at most %d", len(a.Files), maxFiles)
	}
	p := &plan{
		flags:     a.Cloneflags | unix.CLONE_VM | unix.CLONE_VFORK | pidfdFlag | uintptr(unix.SIGCHLD),
		pidfd:     -1,
		pdeathsig: !a.Detached,
		mapIDs:    a.Cloneflags&unix.CLONE_NEWUSER != 0,
		ign:       sigaction{handler: 1}, // SIG_IGN; dfl is SIG_DFL, 0
	}
	p.path = p.keep.CString(a.Path)
	p.argv = p.keep.CStrings(a.Argv)
	p.envp = p.keep.CStrings(a.Env)
	p.nfiles = uintptr(len(a.Files))
	for i, f := range a.Files {
		if f == nil {
			return nil, fmt.Errorf("vforkexec: file %d is nil", i)
		}
		p.files[i] = f.Fd()
	}
	p.sgPath = p.keep.CString("/proc/self/setgroups")
	p.gidPath = p.keep.CString("/proc/self/gid_map")
	p.uidPath = p.keep.CString("/proc/self/uid_map")
	p.deny, p.denyLen = p.keep.Bytes("deny")
	p.gidLine, p.gidLen = p.keep.Bytes("0 " + strconv.Itoa(os.Getegid()) + " 1")
	p.uidLine, p.uidLen = p.keep.Bytes("0 " + strconv.Itoa(os.Geteuid()) + " 1")
	return p, nil
}

// pidfdFlag asks clone for a pidfd; a variable for the test of kernels
// before 5.2, which reject it.
var pidfdFlag uintptr = unix.CLONE_PIDFD

// Start creates the child and returns once it has exec'd: its pid and a
// pidfd for it, or -1 on a kernel before 5.2, which has no CLONE_PIDFD
// (the caller closes the pidfd and reaps the child). An error from the
// clone wraps the kernel's errno; one from the child names the step that
// failed, wraps its errno, and the child is reaped.
func Start(a Attr) (pid, pidfd int, err error) {
	if !supported {
		return 0, -1, fmt.Errorf("vforkexec: not supported on %s", runtime.GOARCH)
	}
	p, err := newPlan(a)
	if err != nil {
		return 0, -1, err
	}
	// As os/exec does: no fd may be created without close-on-exec while
	// the child is about.
	syscall.ForkLock.Lock()
	r, errno := spawn(p)
	if errno == unix.EINVAL && p.flags&pidfdFlag != 0 {
		// A kernel without CLONE_PIDFD says EINVAL, as one without a
		// namespace type does: ask again without it to know which.
		p.flags &^= pidfdFlag
		r, errno = spawn(p)
	}
	syscall.ForkLock.Unlock()
	for _, f := range a.Files {
		runtime.KeepAlive(f)
	}
	runtime.KeepAlive(p)
	if errno != 0 {
		return 0, -1, fmt.Errorf("clone: %w", errno)
	}
	pid, pidfd = int(r), int(p.pidfd)
	if p.step != stepNone {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		for {
			if _, werr := unix.Wait4(pid, nil, 0, nil); werr != unix.EINTR {
				break
			}
		}
		return 0, -1, fmt.Errorf("%s: %w", stepNames[p.step], p.errno)
	}
	return pid, pidfd, nil
}
