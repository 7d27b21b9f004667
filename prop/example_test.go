package prop_test

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/prop"
)

// nsID is a namespace's identity: (st_dev, st_ino) of its nsfs file.
type nsID struct{ Dev, Ino uint64 }

func ownUTS() (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/uts", &st); err != nil {
		return nsID{}, fmt.Errorf("stat /proc/self/ns/uts: %w", err)
	}
	return nsID{st.Dev, st.Ino}, nil
}

func hostname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Nodename[:]), nil
}

// renameArgs asks a helper to set its hostname, unless it finds itself in
// the Forbidden UTS namespace (the observer's: a kernel that ignored
// CLONE_NEWUTS must not get the host renamed).
type renameArgs struct {
	Name      string `json:"name"`
	Forbidden nsID   `json:"forbidden"`
}

var errSameNS = errors.New("refusing to rename: the helper is in the observer's UTS namespace")

func init() {
	// Helper actions run in the re-executed test binary, inside the
	// namespaces the check asked for.
	helper.Handle("example.rename", func(a renameArgs) (any, error) {
		if own, err := ownUTS(); err != nil || own == a.Forbidden {
			return nil, errors.Join(errSameNS, err)
		}
		if err := unix.Sethostname([]byte(a.Name)); err != nil {
			return nil, helper.Fail("sethostname", err)
		}
		return hostname()
	})
}

var _ = prop.Register(prop.Property{
	ID:    "example.hostname-stays-inside",
	Title: "a hostname set in a new UTS namespace is seen there; the observer's is unchanged",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS, // what the negative control withholds
	Check: func(t *prop.Trial) error {
		before, err := hostname()
		if err != nil {
			return err
		}
		var forbidden nsID
		if !t.Sandboxed { // the control's observer is a disposable sandbox
			if forbidden, err = ownUTS(); err != nil {
				return err
			}
		}
		var inside string
		if err := t.Run(helper.Spec{Action: "example.rename", Args: renameArgs{Name: "renamed-inside", Forbidden: forbidden}, Cloneflags: unix.CLONE_NEWUTS}, &inside); err != nil {
			return err
		}
		after, err := hostname()
		if err != nil {
			return err
		}
		t.Inside("hostname", inside)
		t.Host("hostname", after)
		t.Expect(inside == "renamed-inside", "the helper sees hostname %q, not the one it set", inside)
		t.Expect(after == before, "the observer's hostname changed from %q to %q", before, after)
		return nil
	},
})

// A property of one's own: a check with its negative control, registered
// once and evaluated like every property of the catalog (in a Ginkgo suite,
// package specs makes it a spec).
func ExampleRegister() {
	p, _ := prop.Lookup("example.hostname-stays-inside")
	ev := prop.Evaluate(context.Background(), p)
	// "passed" with the control "detected" here; "skipped" where UTS
	// namespaces cannot be created (ev.Skip says why and the fix).
	fmt.Println("failed:", ev.State() == "failed")
	// Output: failed: false
}
