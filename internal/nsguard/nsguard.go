// Package nsguard is nscheck's one guard against acting on the real host.
// A helper that mounts, renames, creates or changes anything is meant to
// do it in a namespace of its own; on a kernel that ignores a CLONE_NEW*
// flag (or through a bug in a check) it would be in its parent's, and what
// it changes would be the host. So nothing is changed before the guard has
// compared the identity (st_dev, st_ino of the nsfs file) of the namespace
// the caller is in with one it must not be in, and a helper that finds
// itself there stops and says so: that is evidence of a leak, never an
// action.
//
// The guard has two uses, both [Check]:
//
//   - At clone. The parent records, for every namespace type it asks a
//     child to get a new one of, the identity of its own ([Observe]), and
//     the child checks the set before it runs anything ([Verify]). package
//     helper does this for every helper, so that a control's sandbox, a
//     helper and a helper's helper never run their action in the
//     namespace they were cloned to leave. Its refusal is an *Error with
//     Asked set: the kernel did not create the namespace, which the
//     verdict reports as isolation broken.
//   - Before an action that must never happen in the host's namespace of
//     a type, whoever asked for it: the check passes the observer's
//     identity down (prop.Trial.Forbidden) and the action calls Check. Its
//     refusal (Asked false) is a harness error: the check ran an action
//     where it did not ask for a namespace.
//
// The package links only nsfs and x/sys/unix: every helper process runs it.
package nsguard

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsfs"
)

// Error says that a process is in a namespace it must not act in.
type Error struct {
	// Type is the namespace type ("mnt", "pid", ...).
	Type string `json:"type"`
	// ID is the namespace the process found itself in.
	ID nsfs.ID `json:"id"`
	// Asked is true when the process was cloned with the type's
	// CLONE_NEW* flag: the kernel did not create the namespace (a leak).
	// False: an action was about to run in the host's namespace.
	Asked bool `json:"asked,omitempty"`
	// Broken, with Asked, is set when the kernel created the namespace
	// but it does not behave as one: the evidence, in words (for a PID
	// namespace, the first process whose getpid() is not 1). ID is then
	// the new namespace.
	Broken string `json:"broken,omitempty"`
}

func (e *Error) Error() string {
	if e.Asked {
		return e.Cause() + ": " + e.Detail()
	}
	return fmt.Sprintf("refusing to act: this helper is in the host's %s namespace (nsfs %s)", Name(e.Type), e.ID)
}

// Detail is the evidence of a namespace the kernel did not create, in
// words: which flag, and where the helper was left.
func (e *Error) Detail() string {
	if e.Broken != "" {
		return e.Broken
	}
	return fmt.Sprintf("the helper cloned with %s is still in its parent's (nsfs %s), so it did not act", flagName(e.Type), e.ID)
}

// Cause is the words of the verdict on the kernel this error is evidence
// of: a namespace it did not create (Leak), or one it created broken.
func (e *Error) Cause() string {
	if e.Broken != "" {
		return Broken(e.Type)
	}
	return Leak(e.Type)
}

// Broken is the words of the verdict on a kernel whose new namespaces of
// typ do not behave as namespaces.
func Broken(typ string) string {
	return "the kernel's " + Name(typ) + " namespace is broken"
}

// Leak is the words of the verdict on a kernel that did not create a new
// namespace of typ.
func Leak(typ string) string {
	return "the kernel did not create a new " + Name(typ) + " namespace"
}

// Name is how a namespace type is called in words ("mount" for "mnt").
func Name(typ string) string {
	switch typ {
	case "mnt":
		return "mount"
	case "net":
		return "network"
	case "uts", "ipc", "pid":
		return strings.ToUpper(typ)
	}
	return typ
}

func flagName(typ string) string {
	switch typ {
	case "mnt":
		return "CLONE_NEWNS"
	case "":
		return "?"
	}
	return "CLONE_NEW" + strings.ToUpper(typ)
}

// Check fails with an *Error when the calling thread is in the namespace
// forbidden of type typ (a zero ID forbids nothing). asked says whether the
// caller was cloned to leave it (see Error.Asked).
func Check(typ string, forbidden nsfs.ID, asked bool) error {
	in, err := In(typ, forbidden)
	if err != nil || !in {
		return err
	}
	return &Error{Type: typ, ID: forbidden, Asked: asked}
}

// In reports whether the calling thread is in the namespace forbidden of
// type typ (never, for a zero ID): the comparison every guard makes.
func In(typ string, forbidden nsfs.ID) (bool, error) {
	if forbidden == (nsfs.ID{}) {
		return false, nil
	}
	own, err := nsfs.Stat("/proc/thread-self/ns/" + typ)
	if err != nil {
		return false, fmt.Errorf("namespace guard: %w", err)
	}
	return own == forbidden, nil
}

// Refuse is Check for an action in the host's namespace (Asked false).
func Refuse(typ string, forbidden nsfs.ID) error { return Check(typ, forbidden, false) }

// Set is the namespaces a child must not be in, one per type it is cloned
// to get a new one of: the parent's.
type Set map[string]nsfs.ID

// Observe records the calling thread's namespace of every type in flags.
// A type this kernel does not have (no nsfs file) is left out: the clone
// will fail for it.
func Observe(flags uintptr) (Set, error) {
	var s Set
	for _, typ := range nsfs.Types {
		if flags&nsfs.Flags[typ] == 0 {
			continue
		}
		id, err := nsfs.Stat("/proc/thread-self/ns/" + typ)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("namespace guard: %w", err)
		}
		if s == nil {
			s = Set{}
		}
		s[typ] = id
	}
	return s, nil
}

// Verify checks, in the child, that it is in none of the namespaces of s:
// the first one it is still in is an *Error with Asked set. A child cloned
// for a new PID namespace is that namespace's first process, so it also
// checks that getpid() says 1: on a kernel that answers in another
// namespace's terms, every pid the child reports of itself, and every
// /proc/<pid> it builds from one, would be wrong, so it stops with an
// *Error with Broken set instead.
func (s Set) Verify() error {
	for _, typ := range nsfs.Types {
		if id, ok := s[typ]; ok {
			if err := Check(typ, id, true); err != nil {
				return err
			}
		}
	}
	if _, ok := s["pid"]; ok {
		if pid := unix.Getpid(); pid != 1 {
			own, _ := nsfs.Stat("/proc/thread-self/ns/pid")
			return &Error{Type: "pid", ID: own, Asked: true, Broken: fmt.Sprintf(
				"the first process of a new PID namespace (cloned with CLONE_NEWPID) has getpid() = %d, not 1 (gettid() = %d), so it did not act", pid, unix.Gettid())}
		}
	}
	return nil
}

// PIDBrokenAtClone is the Error of a child cloned for a new PID namespace
// that failed to signal itself by the pid getpid() gave it: ESRCH there
// means getpid() named no process of the child's own namespace.
func PIDBrokenAtClone(how string) *Error {
	return &Error{Type: "pid", Asked: true, Broken: "a process cloned with CLONE_NEWPID could not signal itself by the pid getpid() gave it (" + how + " failed with ESRCH): getpid() answers outside its PID namespace"}
}

// String encodes s for the helper protocol: "mnt=4:4026531841,pid=4:..."
// (types in nsfs.Types order), parsed back by Parse without reflection.
func (s Set) String() string {
	var b []byte
	for _, typ := range nsfs.Types {
		id, ok := s[typ]
		if !ok {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(append(b, typ...), '=')
		b = strconv.AppendUint(b, id.Dev, 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, id.Ino, 10)
	}
	return string(b)
}

// Parse decodes what String encoded.
func Parse(v string) (Set, error) {
	if v == "" {
		return nil, nil
	}
	s := Set{}
	for item := range strings.SplitSeq(v, ",") {
		typ, id, ok := strings.Cut(item, "=")
		dev, ino, ok2 := strings.Cut(id, ":")
		d, err1 := strconv.ParseUint(dev, 10, 64)
		i, err2 := strconv.ParseUint(ino, 10, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("namespace guard: bad entry %q", item)
		}
		s[typ] = nsfs.ID{Dev: d, Ino: i}
	}
	return s, nil
}
