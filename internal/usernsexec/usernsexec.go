// Package usernsexec starts a program in a new user namespace (and any
// other new namespaces) whose root is the caller, the way
// `unshare --map-root-user` does: the child writes its own one-id maps,
// setgroups denied, before it execs.
//
// It exists for speed. os/exec cannot vfork a child that gets a user
// namespace: its parent writes the child's id maps while the child waits,
// so the child must not share the parent's memory and the parent's page
// tables are copied (and every page the parent writes afterwards takes a
// copy-on-write fault). The one mapping a process may write for itself,
// its own uid and gid as root, needs no parent at all, so here the child
// shares the parent's memory (CLONE_VM|CLONE_VFORK): a user-namespace
// helper then costs what any other helper costs, a vfork and an exec.
// Other mappings, credentials and CLONE_NEWTIME (which clone(2) cannot
// express) are left to os/exec: see Eligible.
//
// Between the clone and the exec the child runs on the parent's stack and
// obeys the rules of internal/rawsys. The parent blocks every signal
// around the clone; the child resets the signal handlers the runtime
// installed (which execve would reset anyway) and restores the mask just
// before it execs, so the program starts with the caller's mask.
package usernsexec

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
	// Cloneflags are the namespaces to create; they must include
	// CLONE_NEWUSER.
	Cloneflags uintptr
}

// Eligible reports whether Start can create a child with these flags, id
// maps and credential: a new user namespace mapping root to the caller's
// effective uid and gid (one id each), no CLONE_NEWTIME, no credential
// change, on an architecture this package supports.
func Eligible(flags uintptr, uids, gids []syscall.SysProcIDMap, cred *syscall.Credential) bool {
	return supported && flags&unix.CLONE_NEWUSER != 0 && flags&unix.CLONE_NEWTIME == 0 && cred == nil &&
		rootOnly(uids, os.Geteuid()) && rootOnly(gids, os.Getegid())
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
	flags    uintptr
	pidfd    int32
	ppid     uintptr
	path     uintptr
	argv     uintptr
	envp     uintptr
	nfiles   uintptr
	files    [maxFiles]uintptr
	tmp      [maxFiles]uintptr
	sgPath   uintptr
	gidPath  uintptr
	uidPath  uintptr
	deny     uintptr
	denyLen  uintptr
	gidLine  uintptr
	gidLen   uintptr
	uidLine  uintptr
	uidLen   uintptr
	oldMask  uint64
	dfl, ign sigaction
	old      sigaction

	// Written by a child that failed.
	step  uintptr
	errno unix.Errno

	keep rawsys.Keep
}

func newPlan(a Attr) (*plan, error) {
	if a.Cloneflags&unix.CLONE_NEWUSER == 0 {
		return nil, errors.New("usernsexec: the clone flags lack CLONE_NEWUSER")
	}
	if len(a.Files) > maxFiles {
		return nil, fmt.Errorf("usernsexec: %d files, at most %d", len(a.Files), maxFiles)
	}
	p := &plan{
		flags: a.Cloneflags | unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PIDFD | uintptr(unix.SIGCHLD),
		pidfd: -1,
		ppid:  uintptr(os.Getpid()),
		ign:   sigaction{handler: 1}, // SIG_IGN; dfl is SIG_DFL, 0
	}
	p.path = p.keep.CString(a.Path)
	p.argv = p.keep.CStrings(a.Argv)
	p.envp = p.keep.CStrings(a.Env)
	p.nfiles = uintptr(len(a.Files))
	for i, f := range a.Files {
		if f == nil {
			return nil, fmt.Errorf("usernsexec: file %d is nil", i)
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

// Start creates the child and returns once it has exec'd: its pid and a
// pidfd for it (the caller closes the pidfd and reaps the child). An
// error from the clone wraps the kernel's errno; one from the child names
// the step that failed, wraps its errno, and the child is reaped.
func Start(a Attr) (pid, pidfd int, err error) {
	if !supported {
		return 0, -1, fmt.Errorf("usernsexec: not supported on %s", runtime.GOARCH)
	}
	p, err := newPlan(a)
	if err != nil {
		return 0, -1, err
	}
	// As os/exec does: no fd may be created without close-on-exec while
	// the child is about.
	syscall.ForkLock.Lock()
	r, errno := spawn(p)
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
		unix.Close(pidfd)
		for {
			if _, werr := unix.Wait4(pid, nil, 0, nil); werr != unix.EINTR {
				break
			}
		}
		return 0, -1, fmt.Errorf("%s: %w", stepNames[p.step], p.errno)
	}
	return pid, pidfd, nil
}
