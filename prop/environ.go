package prop

import (
	"context"
	"fmt"
	"github.com/nscheck/nscheck/internal/procfile"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The premises of the file systems and the network namespace nscheck runs
// in: its /proc, its scratch space, its loopback. They are facts of the
// caller's environment, which checks read through (/proc/<pid>/...) or use
// (a directory to mount on, 127.0.0.1), not what they assert.

// OwnProc is the premise every property has: /proc is a whole proc of
// nscheck's own PID namespace. Checks read their helpers through
// /proc/<pid>/...; a /proc mounted in an ancestor PID namespace (unshare
// --pid without --mount-proc) shows other processes under those numbers,
// or none, and every such read would be a harness error or, worse,
// evidence about the wrong process. One mounted with subset=pid (a
// hardened systemd service's) lacks /proc/sys, /proc/sysvipc and the
// rest that checks read besides the process directories: their reads
// would fail, or a check would take the missing file for evidence.
var OwnProc = Premise{Key: "proc", Why: "reading helpers and the kernel's state through /proc", Probe: func(context.Context) error {
	return ProcUnmet()
}}

// ProcFix is how to give nscheck a /proc of its own PID namespace.
const ProcFix = "mount a proc for nscheck's PID namespace: run it with unshare --mount-proc (or unshare --pid --fork --mount-proc), " +
	"or keep CAP_SYS_ADMIN over its mount and PID namespaces so that `nscheck run` mounts its own"

// ProcSubsetFix is how to give nscheck a whole /proc.
const ProcSubsetFix = "give nscheck the whole /proc (systemd: ProcSubset=all, the default), " +
	"or keep CAP_SYS_ADMIN over its mount namespace so that `nscheck run` mounts a proc of its own"

// ProcUnmet says whether /proc is a whole proc that shows this process
// under its own PID (nil), or what is wrong with it (an *UnmetError).
func ProcUnmet() error {
	why, err := procfile.Foreign()
	if err != nil {
		return err
	}
	if why != "" {
		return Unmet(why, ProcFix)
	}
	if why, err = procfile.Partial(); err != nil {
		return err
	}
	if why != "" {
		return Unmet(why, ProcSubsetFix)
	}
	return nil
}

// ScratchEnv names the directory nscheck's scratch space is in, when it
// brought its own (a tmpfs in a mount namespace of its own, see
// internal/ownview); helpers inherit it.
const ScratchEnv = "NSCHECK_SCRATCH"

// ScratchRoot is the directory every scratch directory of a check is made
// in: the tmpfs nscheck mounted for itself ($NSCHECK_SCRATCH), or else the
// temporary directory ($TMPDIR, /tmp). In a control's sandbox it is a
// private tmpfs (PrepareSandbox).
func ScratchRoot() string {
	if d := os.Getenv(ScratchEnv); d != "" {
		return d
	}
	return os.TempDir()
}

// scratchCandidates are the directories a scratch tmpfs may be mounted on,
// in a mount namespace of nscheck's own, when ScratchRoot is none.
var scratchCandidates = []string{"/tmp", "/var/tmp", "/run", "/mnt", "/dev/shm"}

// ScratchMountPoint is the directory to mount a scratch tmpfs on in a
// mount namespace of nscheck's own (internal/ownview, a control's sandbox):
// ScratchRoot when it is a directory (writable or not), else the first of
// /tmp, /var/tmp, /run, /mnt, /dev/shm that is one; "" when none is.
func ScratchMountPoint() string {
	for _, d := range append([]string{ScratchRoot()}, scratchCandidates...) {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return ""
}

// ScratchFix is how to give nscheck scratch space.
const ScratchFix = "give nscheck a writable temporary directory (TMPDIR=DIR, or a /tmp), " +
	"or keep CAP_SYS_ADMIN over its mount namespace so that `nscheck run` mounts a tmpfs of its own"

// ScratchUnmet says whether ScratchRoot is a writable directory (nil), or
// what is wrong with it (an *UnmetError).
func ScratchUnmet() error {
	root := ScratchRoot()
	st, err := os.Stat(root)
	switch {
	case err != nil:
		return Unmet(fmt.Sprintf("no scratch space: %v", err), ScratchFix)
	case !st.IsDir():
		return Unmet(fmt.Sprintf("no scratch space: %s is not a directory", root), ScratchFix)
	}
	if err := unix.Access(root, unix.W_OK); err != nil {
		return Unmet(fmt.Sprintf("no scratch space: %s is not writable (%v)", root, err), ScratchFix)
	}
	return nil
}

// Scratch is the premise that a check can make directories of its own
// (ScratchDir): to mount on, to hand to a helper.
var Scratch = Premise{Key: "scratch", Why: "a directory of the check's own", Probe: func(context.Context) error {
	return ScratchUnmet()
}}

// ScratchDir makes a fresh directory in nscheck's scratch space (see
// ScratchRoot) and returns its path; the caller removes it. Every check
// makes its directories here: none depends on the caller's /tmp.
func ScratchDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(ScratchRoot(), prefix)
	if err != nil {
		if u := ScratchUnmet(); u != nil {
			return "", u
		}
		return "", fmt.Errorf("make a scratch directory: %w", err)
	}
	return dir, nil
}

// Loopback is the premise that lo is up in nscheck's own network
// namespace, for a check that talks to 127.0.0.1 from the observer's side.
// A network namespace that nscheck is started in (unshare --net) has lo
// down; nscheck does not change the caller's links.
func Loopback(why string) Premise {
	return Premise{Key: "loopback", Why: why, Probe: func(context.Context) error {
		up, err := LoopbackUp()
		if err != nil {
			return err
		}
		if !up {
			return Unmet("lo is down in nscheck's network namespace (a new network namespace starts with it down)",
				"bring it up before running nscheck: ip link set lo up (unshare --net: run `ip link set lo up; nscheck run` inside)")
		}
		return nil
	}}
}

// LoopbackUp reads whether lo is up in this process's network namespace.
func LoopbackUp() (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	req, err := unix.NewIfreq("lo")
	if err != nil {
		return false, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, req); err != nil {
		return false, fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	return req.Uint16()&unix.IFF_UP != 0, nil
}

// ProcSysWritable is the premise that /proc/sys is not mounted read-only,
// for a check that writes a namespaced sysctl inside its helper. Container
// runtimes mount /proc/sys read-only, and a new namespace's helper inherits
// that mount: the write fails with EROFS before the kernel looks at the
// namespace, so the check could tell nothing.
func ProcSysWritable(why string) Premise {
	return Premise{Key: "procsys-writable", Why: why, Probe: func(context.Context) error {
		var st unix.Statfs_t
		if err := unix.Statfs("/proc/sys", &st); err != nil {
			return fmt.Errorf("statfs /proc/sys: %w", err)
		}
		if st.Flags&unix.ST_RDONLY != 0 {
			return Unmet("/proc/sys is mounted read-only here (as container runtimes mount it), so no sysctl can be written, not even in a new namespace",
				"run nscheck on the host, or give the container a writable /proc/sys (docker run --security-opt systempaths=unconfined)")
		}
		return nil
	}}
}

// SelfPID is this process's pid as its /proc names it (the /proc/self
// link): the number by which another process reads /proc/<pid> of this
// one. Where OwnProc holds, and in a control's sandbox, whose /proc is its
// own, that is getpid() on a correct kernel; on one whose getpid() answers
// in another PID namespace's terms, only this finds the process.
func SelfPID() (int, error) {
	link, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, fmt.Errorf("read this process's pid: %w", err)
	}
	pid, err := strconv.Atoi(link)
	if err != nil {
		return 0, fmt.Errorf("read this process's pid: /proc/self is %q", link)
	}
	return pid, nil
}
