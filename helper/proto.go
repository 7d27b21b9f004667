package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/nscheck/nscheck/internal/nsguard"
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
	// Guard is the parent's namespace of every type the helper was
	// cloned to get a new one of (nsguard.Set.String): the helper checks
	// that it is in none of them before it runs the action.
	Guard string `json:"guard,omitempty"`
}

// Reply is what the child sends on fd 3.
type Reply struct {
	// PID is getpid() as the helper sees it (1 in a new PID namespace).
	PID   int             `json:"pid"`
	Facts json.RawMessage `json:"facts,omitempty"`
	Err   *Error          `json:"error,omitempty"`
}

// The helper's side of the envelope (decoding the Request, encoding the
// Reply) is written out instead of left to encoding/json's reflection,
// which builds its field tables on first use: every helper process would
// pay that, about 0.07 ms of a 3 ms spawn. The parent side, a long-lived
// process, uses encoding/json; the tests check that the two agree.

// decode reads one Request object from dec with the decoder's tokenizer:
// the fields by name, unknown ones skipped, as json.Unmarshal would.
func (r *Request) decode(dec *json.Decoder) error {
	if t, err := dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return fmt.Errorf("request: want an object, got %v", t)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "action":
			err = decodeScalar(dec, &r.Action)
		case "args":
			err = dec.Decode(&r.Args)
		case "hold":
			err = decodeScalar(dec, &r.Hold)
		case "guard":
			err = decodeScalar(dec, &r.Guard)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return fmt.Errorf("request field %v: %w", key, err)
		}
	}
	_, err := dec.Token() // the closing brace
	return err
}

// decodeScalar reads one string or bool token into v; null leaves it.
func decodeScalar[T string | bool](dec *json.Decoder, v *T) error {
	t, err := dec.Token()
	if err != nil || t == nil {
		return err
	}
	x, ok := t.(T)
	if !ok {
		return fmt.Errorf("want a %T, got %v", *v, t)
	}
	*v = x
	return nil
}

// appendLine appends the Reply as one line of JSON. Facts are already
// JSON; an Error, the rare case, goes through encoding/json.
func (r Reply) appendLine(b []byte) ([]byte, error) {
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	if len(r.Facts) > 0 {
		if !json.Valid(r.Facts) {
			return nil, errors.New("reply facts are not valid JSON")
		}
		b = append(append(b, `,"facts":`...), r.Facts...)
	}
	if r.Err != nil {
		e, err := json.Marshal(r.Err)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"error":`...), e...)
	}
	return append(b, "}\n"...), nil
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
	// Guard is set when a namespace guard stopped a helper (see
	// internal/nsguard): where it found itself, and whether the kernel
	// failed to create a namespace it was cloned to get.
	Guard *nsguard.Error `json:"guard,omitempty"`
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Msg
	}
	return e.Op + ": " + e.Msg
}

// Unwrap exposes the errno, so errors.Is(err, unix.EPERM) works on the parent
// side as it would have in the child, and the guard's *nsguard.Error, so
// that errors.As finds it on either side.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Errno != 0 {
		out = append(out, syscall.Errno(e.Errno))
	}
	if e.Guard != nil {
		out = append(out, e.Guard)
	}
	return out
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
	var g *nsguard.Error
	if errors.As(err, &g) {
		return &Error{Op: "namespace guard", Msg: err.Error(), Guard: g}
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
