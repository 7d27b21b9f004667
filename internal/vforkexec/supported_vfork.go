//go:build amd64 || arm64

package vforkexec

import "golang.org/x/sys/unix"

const supported = true

// vforkClone is clone(flags, 0, pidfd, 0, 0) for a CLONE_VM|CLONE_VFORK
// child, which runs on this very stack until it execs or exits (see
// vfork_amd64.s and vfork_arm64.s). It returns 0 in the child, the
// child's pid in the parent.
//
//go:noescape
func vforkClone(flags uintptr, pidfd *int32) (pid uintptr, errno unix.Errno)
