// Package errname renders the outcome of a system call as evidence: "ok",
// the errno's symbolic name ("EPERM"), or the error's text. Properties
// compare these names, and reports show them as the kernel's man pages do.
package errname

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// OK is the name of success.
const OK = "ok"

// Of names err.
func Of(err error) string {
	if err == nil {
		return OK
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return err.Error()
}

// Is reports whether err names errno (as Of would render it).
func Is(name string, errno syscall.Errno) bool { return name == unix.ErrnoName(errno) }
