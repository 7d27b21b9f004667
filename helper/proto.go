package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
)

// EnvVar selects helper mode in a re-executed binary.
const EnvVar = "NSCHECK_HELPER"

// File descriptors of the two protocol pipes in the child.
const (
	replyFD   = 3
	requestFD = 4
)

// Request is what the parent sends on fd 4.
type Request struct {
	Action string          `json:"action"`
	Args   json.RawMessage `json:"args,omitempty"`
	// Hold keeps the helper alive after its reply until the parent
	// releases it, so the host can inspect /proc/<pid>.
	Hold bool `json:"hold,omitempty"`
}

// Reply is what the child sends on fd 3.
type Reply struct {
	// PID is getpid() as the helper sees it (1 in a new PID namespace).
	PID   int             `json:"pid"`
	Facts json.RawMessage `json:"facts,omitempty"`
	Err   *Error          `json:"error,omitempty"`
}

// Error is an error that crossed the process boundary: the operation that
// failed, its errno (0 when it was not a system call) and the text.
type Error struct {
	Op    string `json:"op"`
	Errno int    `json:"errno,omitempty"`
	Msg   string `json:"msg"`
	// CloneFlags is set when the kernel refused to create namespaces inside
	// the helper (a StartError there): the flags it was asked for.
	CloneFlags uint64 `json:"clone_flags,omitempty"`
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Msg
	}
	return e.Op + ": " + e.Msg
}

// Unwrap exposes the errno, so errors.Is(err, unix.EPERM) works on the parent
// side as it would have in the child.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return syscall.Errno(e.Errno)
}

// Fail builds the Error for a failed operation inside an action.
func Fail(op string, err error) *Error {
	e := &Error{Op: op, Msg: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = int(errno)
		e.Msg = errno.Error()
	}
	return e
}

// toError converts whatever an action returned into the wire form.
func toError(err error) *Error {
	var se *StartError
	if errors.As(err, &se) {
		out := Fail("", err)
		out.Msg = err.Error()
		out.CloneFlags = uint64(se.Flags)
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := Fail("", err)
	out.Msg = err.Error()
	return out
}

// Errno extracts the errno of err (a wire Error, a start failure or a plain
// syscall error); 0 when there is none.
func Errno(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// StartError reports that the kernel refused to create the child: clone(2)
// with the requested flags failed. Its errno says why (EPERM, ENOSPC,
// EINVAL, EUSERS, EACCES), which the caller maps to a skip reason.
type StartError struct {
	Flags uintptr
	Err   error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("clone(%s): %v", FlagNames(e.Flags), e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// Refused reports why namespaces could not be created, whatever the side
// of a process boundary: a StartError here, or an Error from a helper whose
// own clone (or unshare) the kernel refused.
func Refused(err error) (*StartError, bool) {
	var se *StartError
	if errors.As(err, &se) {
		return se, true
	}
	var e *Error
	if errors.As(err, &e) && e.CloneFlags != 0 {
		return &StartError{Flags: uintptr(e.CloneFlags), Err: e}, true
	}
	return nil, false
}
