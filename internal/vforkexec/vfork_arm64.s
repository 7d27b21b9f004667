#include "textflag.h"

#define SYS_clone 220

// func vforkClone(flags uintptr, pidfd *int32) (pid uintptr, errno unix.Errno)
//
// The child of a CLONE_VM|CLONE_VFORK clone resumes on the parent's stack
// while the parent sleeps in the kernel. On arm64 the return address is
// in the link register, which each task has its own copy of, and this
// function has no frame: it writes nothing on the stack before the system
// call, so whatever the child writes there afterwards cannot send the
// parent elsewhere. The arguments are loaded before the call and the
// results stored after it, by each task for itself. arm64's clone takes
// (flags, newsp, parent_tid, tls, child_tid): CLONE_PIDFD stores the
// pidfd through parent_tid.
TEXT ·vforkClone(SB), NOSPLIT|NOFRAME, $0-32
	MOVD	flags+0(FP), R0
	MOVD	$0, R1	// no new stack: share this one, as vfork does
	MOVD	pidfd+8(FP), R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$SYS_clone, R8
	SVC
	CMN	$4095, R0
	BCS	failed	// -4095..-1 is an errno
	MOVD	R0, pid+16(FP)
	MOVD	ZR, errno+24(FP)
	RET
failed:
	NEG	R0, R0
	MOVD	ZR, pid+16(FP)
	MOVD	R0, errno+24(FP)
	RET
