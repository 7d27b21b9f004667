// Package nsguard keeps helpers from acting on the real host. A helper that
// mounts, writes a sysctl or creates a link is meant to run in a namespace of
// its own; if the kernel (or a bug in the check) left it in the host's, it
// would change the host. So the check hands each such helper the identity
// of the namespace it must not be in, and the helper refuses to act there.
package nsguard

import (
	"fmt"

	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// Forbidden is the namespace of typ that the helpers of t must not act in:
// the observer's own in the real run (that is the host), none in a
// control's sandbox, which is disposable and the designated victim.
func Forbidden(t *prop.Trial, typ string) (nsfs.ID, error) {
	if t.Sandboxed {
		return nsfs.ID{}, nil
	}
	return nsfs.Of(0, typ)
}

// Check fails when the calling thread is in the forbidden namespace of typ
// (a zero ID forbids nothing).
func Check(typ string, forbidden nsfs.ID) error {
	if forbidden == (nsfs.ID{}) {
		return nil
	}
	own, err := nsfs.Stat("/proc/thread-self/ns/" + typ)
	if err != nil {
		return err
	}
	if own == forbidden {
		return fmt.Errorf("refusing to act: this helper is in the host's %s namespace %s", typ, own)
	}
	return nil
}
