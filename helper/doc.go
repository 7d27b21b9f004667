// Package helper runs nscheck's probes inside fresh Linux namespaces.
//
// # Why a re-exec
//
// A Go process is multi-threaded from its first instruction, and the kernel
// refuses to move a multi-threaded process into a new user or mount namespace
// (unshare(CLONE_NEWUSER) fails with EINVAL, setns(CLONE_NEWNS) too), while a
// new PID namespace only applies to children. So nscheck never unshares the
// namespaces under test in its own process: it clones a child with the
// CLONE_NEW* flags already set and that child re-executes /proc/self/exe (or
// the lean helper binary) in helper mode. The clone is internal/vforkexec's
// vfork, whose child maps root to this process in a new user namespace
// itself; a helper that needs a credential, id maps written by the parent or
// a time namespace is started by os/exec (SysProcAttr.Cloneflags,
// UidMappings, GidMappings).
// The binary that spawns is the binary that answers, so the probes ("actions")
// are ordinary Go functions registered with [Handle] in any package linked
// into it: nscheck itself and every suite's test binary alike.
//
// # Wire protocol
//
// Two pipes, passed as the child's fd 3 and fd 4. Errors cross the process
// boundary as the [Error] struct (operation, errno, text), never as a Go error.
//
//	parent (nscheck, a test binary)             child: /proc/self/exe, NSCHECK_HELPER=1
//	────────────────────────────────            ─────────────────────────────────────────
//	clone(CLONE_NEW*|...) + execve ───────────▶ main/TestMain calls helper.Main() first
//	fd 4 (request)  ── Request{action,args} ──▶ decode, run the registered action
//	fd 3 (reply)    ◀── Reply{pid,facts,err} ── write one JSON line, close fd 3
//	read /proc/<pid>/... while it is held       Request.Hold: block until fd 4 hits EOF
//	close fd 4 (Release) ───────── EOF ───────▶ return from Main: exit 0
//	wait4 (reap), pidfd for signals ◀───────── exit status (non-zero: harness error)
//
// # Lifetime
//
// Every helper has a deadline (Spec.Timeout, else [DefaultTimeout]): a helper
// that does not answer in time is killed with SIGKILL through its pidfd and
// its property fails with "helper timed out after ...". A Go helper running as
// PID 1 of a namespace ignores SIGTERM, so SIGKILL is the only signal used.
// Pdeathsig (SIGKILL) kills a helper whose parent dies; [KillAll] kills every
// helper still alive (for an interrupted run). A helper is always reaped:
// [Process.Release] waits for it.
package helper
