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
// Two pipes, passed as the child's fd 3 and fd 4 (and a third as fd 5 for
// a handshake: see [Spawn]). Errors cross the process boundary as the
// [Error] struct (operation, errno, text), never as a Go error.
//
//	parent (nscheck, a test binary)             child: /proc/self/exe, NSCHECK_HELPER=1
//	────────────────────────────────            ─────────────────────────────────────────
//	nsguard.Observe: own ns of each CLONE_NEW*
//	clone(CLONE_NEW*|...) + execve ───────────▶ main/TestMain calls helper.Main() first
//	fd 4 (request)  ── Request{action,args,  ─▶ decode; the guard: in none of the
//	                           guard}           parent's namespaces it was cloned to leave?
//	                                            then run the registered action
//	fd 3 (reply)    ◀── Reply{pid,facts,err} ── write one JSON line, close fd 3
//	read /proc/<pid>/... while it is held       Request.Hold: block until fd 4 hits EOF
//	close fd 4 (Release) ───────── EOF ───────▶ return from Main: exit 0
//	wait4 (reap), pidfd for signals ◀───────── exit status (non-zero: harness error)
//
// # The namespace guard
//
// A helper that runs in the namespace it was cloned to leave would act on
// its parent's, which is the host for the helpers a check starts. That is
// what a kernel that ignores a CLONE_NEW* flag does, and the catalog exists
// to catch it, so no helper may assume it got what it asked for: the
// parent records the identity of its own namespace of every type it asks
// for (internal/nsguard, on the thread that clones), and the helper checks
// that it is in none of them before it runs its action. When it is, it
// runs nothing and answers with an [Error] whose Guard says which type
// the kernel did not create: evidence of a leak for the verdict (see
// prop.Judge), never an action on the host. [IgnoreCloneFlags] simulates
// such a kernel for tests.
//
// # One spawner
//
// Every Go process nscheck starts in namespaces is a helper started here:
// [Start] and [Run] for the one-request, one-reply helper, [Spawn] for the
// checks whose sequencing needs more — a handshake on fd 5 before the
// reply ([SendHandshake], [Process.Handshake]), a go-ahead the action
// waits for ([AwaitGo], [Process.Go]) so that the parent can act in
// between, detached helpers that outlive their parent (Spec.Detached), and
// the wait status ([Process.Wait], [NoReplyError]). All of them share the
// deadlines, the pidfds, the vfork path and the live set that [KillAll]
// empties.
//
// One other way to clone remains, internal/forkchain, and it cannot be a
// helper spec: it builds a chain of 33 nested namespaces (the nesting
// limits) with raw clone(2) and no exec, in nosplit code that never enters
// the Go runtime, because a Go helper per level costs about 4 ms here
// (a hundred times that under QEMU's TCG) where a raw fork costs a tenth of
// a millisecond; its levels run no Go code, so they cannot serve a request.
// (internal/rendezvous, a socket for taking turns with a helper, is gone:
// the handshake and go-ahead of Spawn do that.)
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
