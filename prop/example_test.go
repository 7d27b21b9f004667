package prop_test

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/prop"
)

func hostname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Nodename[:]), nil
}

func init() {
	// Helper actions run in the re-executed test binary, inside the
	// namespaces the check asked for. The action needs no guard of its own:
	// a helper runs its action only once it has checked that the kernel
	// created every namespace it was cloned with (a kernel that ignored
	// CLONE_NEWUTS would otherwise get the host renamed), and the verdict
	// reports one that did not as isolation broken.
	helper.Handle("example.rename", func(name string) (any, error) {
		if err := unix.Sethostname([]byte(name)); err != nil {
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
		var inside string
		if err := t.Run(helper.Spec{Action: "example.rename", Args: "renamed-inside", Cloneflags: unix.CLONE_NEWUTS}, &inside); err != nil {
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
