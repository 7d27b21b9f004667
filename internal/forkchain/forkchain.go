// Package forkchain builds a chain of nested namespaces, one level per
// clone(2), without exec: the nesting-limit properties need 33 levels, and
// a Go helper costs about 4 ms to start on a host (and a hundred times that
// under QEMU's TCG), where a raw fork costs a tenth of a millisecond.
//
// Run forks a single-threaded copy of the calling process (the runner). The
// runner and every level below it execute only the nosplit code of this
// file, which makes raw system calls and nothing else: it never allocates,
// never enters the Go scheduler and keeps every signal blocked, the same
// discipline the standard library's fork-and-exec child follows between
// fork and exec. Each level clones the next with the chain's flags, maps
// its own uid and gid when the flags include CLONE_NEWUSER (as
// `unshare --map-root-user` does, setgroups denied), then waits for its
// child and exits. The deepest level, the one whose clone failed or that
// reached the requested depth, writes the outcome and its own
// /proc/self/status to a pipe; the caller reads it under a deadline, kills
// the runner when it passes (every level dies with its parent through
// PR_SET_PDEATHSIG) and reaps it.
package forkchain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/rawsys"
)

// Spec describes a chain.
type Spec struct {
	// Flags are the clone flags of every level (0 makes plain forks, as a
	// negative control does).
	Flags uintptr
	// Levels is how many levels to try to create below the caller.
	Levels int
	// NSType, when set (e.g. "pid"), makes every level compare its
	// /proc/self/ns/<NSType> with its parent's and stop the chain when
	// they are the same namespace: the level did not nest.
	NSType string
	// Timeout bounds the whole chain (it is killed when it passes); it
	// is required: nothing nscheck starts may outlive its deadline.
	Timeout time.Duration
}

// Step names the step of a level that failed.
type Step string

// The steps a level takes.
const (
	StepClone     Step = "clone"
	StepSetgroups Step = "write /proc/self/setgroups"
	StepUIDMap    Step = "write /proc/self/uid_map"
	StepGIDMap    Step = "write /proc/self/gid_map"
	StepStat      Step = "stat /proc/self/ns"
)

// The chain's code reports a step by its index in steps.
const (
	stepNone = iota
	stepClone
	stepSetgroups
	stepUIDMap
	stepGIDMap
	stepStat
)

var steps = [...]Step{stepNone: "", stepClone: StepClone, stepSetgroups: StepSetgroups,
	stepUIDMap: StepUIDMap, stepGIDMap: StepGIDMap, stepStat: StepStat}

// Result is what the deepest level reported.
type Result struct {
	// Created counts the levels created below the caller that nested
	// (a level that shares its parent's namespace is not counted).
	Created int
	// Errno is why the chain stopped before Levels (0 when it did not).
	Errno unix.Errno
	// Step is the step that failed with Errno.
	Step Step
	// Shared says the chain stopped at a level that did not nest.
	Shared bool
	// Status is the deepest level's /proc/self/status.
	Status string
}

// Deepest-level record: four int32 words, then the status text.
const (
	recCreated = iota
	recErrno
	recStep
	recShared
	recWords
)

// plan is everything the chain's code reads, prepared before the fork: the
// forked code may not allocate or format anything.
type plan struct {
	flags   uintptr
	levels  int
	pipe    uintptr
	mapIDs  bool
	nsPath  uintptr // NUL-terminated /proc/self/ns/<type>, or 0
	status  uintptr // "/proc/self/status"
	sgPath  uintptr // "/proc/self/setgroups"
	uidPath uintptr // "/proc/self/uid_map"
	gidPath uintptr // "/proc/self/gid_map"
	deny    uintptr
	denyLen uintptr
	uidLine uintptr
	uidLen  uintptr
	gidLine uintptr
	gidLen  uintptr
	rec     [recWords]int32
	buf     [4096]byte
	// keep holds the memory the uintptr fields point into.
	keep rawsys.Keep
}

func newPlan(s Spec, pipe uintptr) *plan {
	p := &plan{flags: s.Flags, levels: s.Levels, pipe: pipe, mapIDs: s.Flags&unix.CLONE_NEWUSER != 0}
	if s.NSType != "" {
		p.nsPath = p.keep.CString("/proc/self/ns/" + s.NSType)
	}
	p.status = p.keep.CString("/proc/self/status")
	p.sgPath = p.keep.CString("/proc/self/setgroups")
	p.uidPath = p.keep.CString("/proc/self/uid_map")
	p.gidPath = p.keep.CString("/proc/self/gid_map")
	p.deny, p.denyLen = p.keep.Bytes("deny")
	// Every level maps its ids to the same ids one level up, so the line
	// is the same at every level.
	uid, gid := strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	p.uidLine, p.uidLen = p.keep.Bytes(uid + " " + uid + " 1")
	p.gidLine, p.gidLen = p.keep.Bytes(gid + " " + gid + " 1")
	return p
}

// Run builds the chain and returns what its deepest level reported. An
// error is a harness failure (the runner could not be forked, the chain
// missed its deadline or answered nonsense); the kernel refusing a level is
// a Result.
func Run(s Spec) (Result, error) {
	if s.Levels < 0 || s.Timeout <= 0 {
		return Result{}, fmt.Errorf("forkchain: %d levels within %v: want levels >= 0 and a deadline", s.Levels, s.Timeout)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("forkchain: pipe: %w", err)
	}
	defer r.Close()
	p := newPlan(s, w.Fd())

	// Pdeathsig of the runner follows this thread: keep it until the
	// runner is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, errno := forkRunner(p)
	runtime.KeepAlive(p)
	w.Close()
	if errno != 0 {
		return Result{}, fmt.Errorf("forkchain: fork: %w", errno)
	}
	if err := r.SetReadDeadline(time.Now().Add(s.Timeout)); err != nil {
		return Result{}, reap(pid, fmt.Errorf("forkchain: %w", err))
	}
	data, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("forkchain: no answer from the chain within %v", s.Timeout)
		} else {
			err = fmt.Errorf("forkchain: read: %w", err)
		}
		return Result{}, reap(pid, err)
	}
	if err := reap(pid, nil); err != nil {
		return Result{}, err
	}
	return decode(data)
}

// Try creates one process with flags (and maps its ids when they include
// CLONE_NEWUSER), a probe of whether the kernel allows it that costs a
// fork, not a helper's exec: nil, or the error of the step that failed,
// wrapping its errno.
func Try(flags uintptr, timeout time.Duration) error {
	r, err := Run(Spec{Flags: flags, Levels: 1, Timeout: timeout})
	if err != nil {
		return err
	}
	if r.Errno != 0 {
		return fmt.Errorf("%s: %w", r.Step, r.Errno)
	}
	return nil
}

// reap kills the runner (a no-op once it has exited) and waits for it;
// its levels die with it.
func reap(pid int, err error) error {
	_ = unix.Kill(pid, unix.SIGKILL)
	for {
		_, werr := unix.Wait4(pid, nil, 0, nil)
		if werr == unix.EINTR {
			continue
		}
		if werr != nil && err == nil {
			err = fmt.Errorf("forkchain: wait4: %w", werr)
		}
		return err
	}
}

func decode(data []byte) (Result, error) {
	if len(data) < recWords*4 {
		return Result{}, fmt.Errorf("forkchain: the chain answered %d bytes, not a record", len(data))
	}
	var rec [recWords]int32
	for i := range rec {
		rec[i] = int32(binary.NativeEndian.Uint32(data[i*4:]))
	}
	step := int(rec[recStep])
	if step < 0 || step >= len(steps) || rec[recCreated] < 0 || rec[recErrno] < 0 {
		return Result{}, fmt.Errorf("forkchain: the chain answered an invalid record %v", rec)
	}
	return Result{
		Created: int(rec[recCreated]),
		Errno:   unix.Errno(rec[recErrno]),
		Step:    steps[step],
		Shared:  rec[recShared] != 0,
		Status:  string(data[recWords*4:]),
	}, nil
}

// forkRunner forks the runner with every signal blocked (no Go signal
// handler may run in it) and restores this thread's mask.
//
//go:norace
//go:nosplit
func forkRunner(p *plan) (int, unix.Errno) {
	var old uint64
	rawsys.Syscall(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&rawsys.AllSignals)), uintptr(unsafe.Pointer(&old)), 8)
	pid, _, errno := rawsys.Syscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0)
	if errno == 0 && pid == 0 {
		chain(p)
	}
	rawsys.Syscall(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8)
	return int(pid), errno
}

// chain is the runner's code and every level's: it never returns.
//
//go:norace
//go:nosplit
func chain(p *plan) {
	rawsys.Syscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0)
	parentIno, errno := nsIno(p)
	if errno != 0 {
		finish(p, 0, errno, stepStat, 0)
	}
	for level := 0; level < p.levels; {
		pid, errno := cloneLevel(p)
		if errno != 0 {
			finish(p, level, errno, stepClone, 0)
		}
		if pid != 0 {
			// This level's part is done: wait for the next one.
			for {
				_, _, errno := rawsys.Syscall(unix.SYS_WAIT4, pid, 0, 0, 0)
				if errno != unix.EINTR {
					break
				}
			}
			rawsys.Exit(0)
		}
		rawsys.Syscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0)
		if p.mapIDs {
			if errno := rawsys.WriteFile(p.sgPath, p.deny, p.denyLen); errno != 0 {
				finish(p, level, errno, stepSetgroups, 0)
			}
			if errno := rawsys.WriteFile(p.uidPath, p.uidLine, p.uidLen); errno != 0 {
				finish(p, level, errno, stepUIDMap, 0)
			}
			if errno := rawsys.WriteFile(p.gidPath, p.gidLine, p.gidLen); errno != 0 {
				finish(p, level, errno, stepGIDMap, 0)
			}
		}
		ino, errno := nsIno(p)
		if errno != 0 {
			finish(p, level, errno, stepStat, 0)
		}
		if p.nsPath != 0 && ino == parentIno {
			finish(p, level, 0, stepNone, 1)
		}
		parentIno = ino
		level++
	}
	finish(p, p.levels, 0, stepNone, 0)
}

// cloneArgs is the kernel's struct clone_args as of Linux 5.3
// (CLONE_ARGS_SIZE_VER0).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls uint64
}

// cloneLevel forks the next level. CLONE_NEWTIME shares its bit with the
// exit signal in clone(2), so only clone3 (Linux 5.3) takes it; every
// other chain uses clone, which older kernels have too.
//
//go:norace
//go:nosplit
func cloneLevel(p *plan) (uintptr, unix.Errno) {
	if p.flags&unix.CLONE_NEWTIME == 0 {
		pid, _, errno := rawsys.Syscall(unix.SYS_CLONE, p.flags|uintptr(unix.SIGCHLD), 0, 0, 0)
		return pid, errno
	}
	args := cloneArgs{flags: uint64(p.flags), exitSignal: uint64(unix.SIGCHLD)}
	pid, _, errno := rawsys.Syscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0, 0)
	return pid, errno
}

// nsIno is the inode of the level's namespace file (0 without NSType).
//
//go:norace
//go:nosplit
func nsIno(p *plan) (uint64, unix.Errno) {
	if p.nsPath == 0 {
		return 0, 0
	}
	fd, _, errno := rawsys.Syscall(unix.SYS_OPENAT, uintptr(rawsys.AtFDCWD), p.nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errno != 0 {
		return 0, errno
	}
	var st unix.Stat_t
	_, _, errno = rawsys.Syscall(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&st)), 0, 0)
	rawsys.Syscall(unix.SYS_CLOSE, fd, 0, 0, 0)
	return st.Ino, errno
}

// finish writes the record and the level's status to the pipe and exits.
//
//go:norace
//go:nosplit
func finish(p *plan, created int, errno unix.Errno, step int, shared int32) {
	p.rec[recCreated] = int32(created)
	p.rec[recErrno] = int32(errno)
	p.rec[recStep] = int32(step)
	p.rec[recShared] = shared
	n := uintptr(0)
	fd, _, oerr := rawsys.Syscall(unix.SYS_OPENAT, uintptr(rawsys.AtFDCWD), p.status, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if oerr == 0 {
		r, _, rerr := rawsys.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)), 0)
		if rerr == 0 {
			n = r
		}
		rawsys.Syscall(unix.SYS_CLOSE, fd, 0, 0, 0)
	}
	rawsys.Syscall(unix.SYS_WRITE, p.pipe, uintptr(unsafe.Pointer(&p.rec[0])), uintptr(len(p.rec)*4), 0)
	rawsys.Syscall(unix.SYS_WRITE, p.pipe, uintptr(unsafe.Pointer(&p.buf[0])), n, 0)
	rawsys.Exit(0)
}
