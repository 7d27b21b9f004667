// Package utsplus is an example of a module of its own that uses nscheck as
// a Ginkgo library: its suite runs nscheck's UTS properties and one
// property it defines here, with a check and a negative control.
package utsplus

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/prop"
)

// maxName is the longest hostname the kernel takes (__NEW_UTS_LEN).
const maxName = 64

func nodename() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Nodename[:]), nil
}

// utsID identifies the UTS namespace of this process.
func utsID() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/uts", &st); err != nil {
		return "", fmt.Errorf("stat /proc/self/ns/uts: %w", err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

type setArgs struct {
	Name string `json:"name"`
	// Forbidden is the observer's UTS namespace: a helper that finds itself
	// there renames nothing.
	Forbidden string `json:"forbidden"`
}

func init() {
	helper.Handle("utsplus.set", func(a setArgs) (any, error) {
		own, err := utsID()
		if err != nil {
			return nil, err
		}
		if own == a.Forbidden {
			return nil, fmt.Errorf("refusing to set the hostname: the helper is in the observer's UTS namespace %s", own)
		}
		if err := unix.Sethostname([]byte(a.Name)); err != nil {
			return nil, helper.Fail("sethostname", err)
		}
		return nodename()
	})
}

// The property: a hostname of the longest length the kernel allows, set
// inside a new UTS namespace, is read back whole there, and the observer's
// hostname is unchanged.
var _ = prop.Register(prop.Property{
	ID:    "utsplus.longest-hostname-local",
	Title: "a 64-byte hostname set inside a new UTS namespace is read back whole there; the observer's hostname is unchanged",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS,
	Check: func(t *prop.Trial) error {
		before, err := nodename()
		if err != nil {
			return err
		}
		forbidden := ""
		if !t.Sandboxed {
			if forbidden, err = utsID(); err != nil {
				return err
			}
		}
		want := strings.Repeat("n", maxName)
		var inside string
		if err := t.Run(helper.Spec{Action: "utsplus.set", Args: setArgs{Name: want, Forbidden: forbidden}, Cloneflags: unix.CLONE_NEWUTS}, &inside); err != nil {
			return err
		}
		after, err := nodename()
		if err != nil {
			return err
		}
		t.Inside("hostname", inside)
		t.Host("hostname", after)
		t.Expect(inside == want, "inside, the hostname reads %q, not the %d bytes set", inside, maxName)
		t.Expect(after == before, "the observer's hostname changed from %q to %q", before, after)
		return nil
	},
})
