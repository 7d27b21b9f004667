// Package mqueue wraps the POSIX message queue system calls, which
// x/sys/unix does not: mq_open(2) and mq_unlink(2). A queue belongs to the
// IPC namespace of the calling thread (its mqueue filesystem instance), not
// to a mount, so these calls are the ground truth of what a process sees.
//
// Names are given as in mq_overview(7), with their leading slash, which is
// stripped before the system call as the C library does.
package mqueue

import (
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxName is NAME_MAX, the longest name after the slash.
const maxName = 255

// Validate checks a queue name: a slash, then 1 to 255 bytes without one.
func Validate(name string) error {
	rest, ok := strings.CutPrefix(name, "/")
	switch {
	case !ok:
		return fmt.Errorf("mqueue name %q does not start with a slash", name)
	case rest == "" || rest == "." || rest == "..":
		return fmt.Errorf("mqueue name %q is empty or a dot name", name)
	case len(rest) > maxName:
		return fmt.Errorf("mqueue name %q is longer than %d bytes", name, maxName)
	case strings.ContainsAny(rest, "/\x00"):
		return fmt.Errorf("mqueue name %q has a slash or NUL after the first", name)
	}
	return nil
}

// Open wraps mq_open(3) with default attributes: it returns a queue
// descriptor (close it with unix.Close). Without unix.O_CREAT in flags it
// never creates anything.
func Open(name string, flags int, mode uint32) (int, error) {
	if err := Validate(name); err != nil {
		return -1, err
	}
	p, err := unix.BytePtrFromString(name[1:])
	if err != nil {
		return -1, err
	}
	fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags|unix.O_CLOEXEC), uintptr(mode), 0, 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("mq_open(%s): %w", name, errno)
	}
	return int(fd), nil
}

// Unlink wraps mq_unlink(3).
func Unlink(name string) error {
	if err := Validate(name); err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(name[1:])
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		return fmt.Errorf("mq_unlink(%s): %w", name, errno)
	}
	return nil
}
