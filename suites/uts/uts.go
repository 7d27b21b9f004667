// Package uts holds the UTS namespace properties: a hostname or domain name
// set inside a new UTS namespace stays there, a new namespace starts as a
// copy of its creator's, it can be rejoined with setns, and creating one
// takes privilege.
package uts

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/prop"
)

// Names are the two names a UTS namespace holds.
type Names struct {
	Hostname   string `json:"hostname"`
	Domainname string `json:"domainname"`
}

// Get reads the caller's (the calling thread's) names with uname(2).
func Get() (Names, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Names{}, fmt.Errorf("uname: %w", err)
	}
	return Names{Hostname: unix.ByteSliceToString(u.Nodename[:]), Domainname: unix.ByteSliceToString(u.Domainname[:])}, nil
}

// A name is one of the two, with its setter.
type name struct {
	kind string // "hostname" or "domainname"
	set  func([]byte) error
}

func (n name) get(ns Names) string {
	if n.kind == "domainname" {
		return ns.Domainname
	}
	return ns.Hostname
}

var (
	hostname   = name{"hostname", unix.Sethostname}
	domainname = name{"domainname", unix.Setdomainname}
	names      = map[string]name{hostname.kind: hostname, domainname.kind: domainname}
)

// setArgs asks a helper to set one of its names.
type setArgs struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// Forbidden is the real host's UTS namespace: a helper that finds itself
	// in it refuses to rename anything (a guard against a kernel that ignores
	// CLONE_NEWUTS). Zero in a control, whose host is a disposable sandbox.
	Forbidden nsfs.ID `json:"forbidden"`
}

func init() {
	helper.Handle("uts.names", func(struct{}) (any, error) { return Get() })
	helper.Handle("uts.set", func(a setArgs) (any, error) {
		if err := set(a); err != nil {
			return nil, err
		}
		return Get()
	})
}

// set sets a name after checking the guard.
func set(a setArgs) error {
	n, ok := names[a.Kind]
	if !ok {
		return fmt.Errorf("unknown UTS name %q", a.Kind)
	}
	if a.Forbidden != (nsfs.ID{}) {
		own, err := nsfs.Of(0, "uts")
		if err != nil {
			return err
		}
		if own == a.Forbidden {
			return fmt.Errorf("refusing to set the %s: this helper is in the host's UTS namespace %s", a.Kind, own)
		}
	}
	if err := n.set([]byte(a.Value)); err != nil {
		return helper.Fail("set"+a.Kind, err)
	}
	return nil
}

// guard is the Forbidden namespace for the helpers of t: the observer's own
// UTS namespace in a real run, none in a control.
func guard(t *prop.Trial) (nsfs.ID, error) {
	if t.Sandboxed {
		return nsfs.ID{}, nil
	}
	return nsfs.Of(0, "uts")
}

var _ = prop.Register(prop.Property{
	ID:    "uts.hostname-local",
	Title: "sethostname inside a new UTS namespace is seen inside; the host's hostname is unchanged",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS,
	Check: func(t *prop.Trial) error { return nameLocal(t, hostname) },
})

var _ = prop.Register(prop.Property{
	ID:    "uts.domainname-local",
	Title: "setdomainname inside a new UTS namespace is seen inside; the host's domain name is unchanged",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS,
	Check: func(t *prop.Trial) error { return nameLocal(t, domainname) },
})

var _ = prop.Register(prop.DistinctNS("uts", prop.NeedUserns))

// nameLocal sets name n in a held helper and compares both sides.
func nameLocal(t *prop.Trial, n name) error {
	before, err := Get()
	if err != nil {
		return err
	}
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	value := prop.UniqueName("nscheck-")
	args := setArgs{Kind: n.kind, Value: value, Forbidden: forbidden}
	p, err := t.Start(helper.Spec{Action: "uts.set", Args: args, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
	if err != nil {
		return err
	}
	var inside Names
	if err := p.Facts(&inside); err != nil {
		return err
	}
	t.Inside(n.kind, n.get(inside))
	t.Expect(n.get(inside) == value, "inside the %s is %q, not the %q it set", n.kind, n.get(inside), value)
	return expectHostKept(t, n, before)
}

// expectHostKept records the observer's name n as it was before and as it is
// now, while a helper holds the namespace in which it was changed, and
// expects no change. Should isolation be broken, the real host is renamed
// back at once.
func expectHostKept(t *prop.Trial, n name, before Names) error {
	now, err := Get()
	if err != nil {
		return err
	}
	was, is := n.get(before), n.get(now)
	t.Host(n.kind+".before", was)
	t.Host(n.kind+".while-held", is)
	if !t.Expect(is == was, "the host's %s changed from %q to %q", n.kind, was, is) && !t.Sandboxed {
		_ = n.set([]byte(was))
	}
	return nil
}
