#include "textflag.h"

#define SYS_clone 56

// func vforkClone(flags uintptr, pidfd *int32) (pid uintptr, errno unix.Errno)
//
// The child of a CLONE_VM|CLONE_VFORK clone resumes on the parent's stack
// while the parent sleeps in the kernel; the child's next call from the
// caller's frame overwrites the slot that holds this function's return
// address. So the return address is taken off the stack into R12 before
// the system call (each task has its own registers) and put back after
// it: the parent returns to the right place whatever the child wrote.
// Nothing is read from the stack between the two: the arguments are
// loaded before, the results stored after.
TEXT ·vforkClone(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ	flags+0(FP), DI
	MOVQ	pidfd+8(FP), DX	// parent_tid: where CLONE_PIDFD stores the pidfd
	XORQ	SI, SI	// no new stack: share this one, as vfork does
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$SYS_clone, AX
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $-4096
	JHI	failed	// -4095..-1 is an errno
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
failed:
	NEGQ	AX
	MOVQ	$0, pid+16(FP)
	MOVQ	AX, errno+24(FP)
	RET
