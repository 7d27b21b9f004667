// Package uts holds the UTS namespace properties: a hostname or domain name
// set inside a new UTS namespace (by its system call or its /proc/sys file)
// stays there, a new namespace starts as a
// copy of its creator's, it can be rejoined with setns, and creating one
// takes privilege.
package uts

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/prop"
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
	if err := nsguard.Refuse("uts", a.Forbidden); err != nil {
		return err
	}
	if err := n.set([]byte(a.Value)); err != nil {
		return helper.Fail("set"+a.Kind, err)
	}
	return nil
}

// baseline reads what every UTS check needs before it changes anything: the
// observer's names, and the Forbidden namespace for its helpers (the
// observer's own UTS namespace in a real run, none in a control).
func baseline(t *prop.Trial) (Names, nsfs.ID, error) {
	before, err := Get()
	if err != nil {
		return before, nsfs.ID{}, err
	}
	forbidden, err := t.Forbidden("uts")
	return before, forbidden, err
}

// nameLocal is the uts.<name>-local property.
func nameLocal(n name) prop.Property {
	return prop.Property{
		ID:    "uts." + n.kind + "-local",
		Title: "set" + n.kind + " inside a new UTS namespace is seen inside; the host's " + n.kind + " is unchanged",
		Needs: prop.NeedUserns,
		Flag:  unix.CLONE_NEWUTS,
		Check: func(t *prop.Trial) error { return checkNameLocal(t, n) },
	}
}

var _ = prop.Register(nameLocal(hostname))
var _ = prop.Register(nameLocal(domainname))
var _ = prop.Register(prop.DistinctNS("uts", prop.NeedUserns))

// startSetter starts a held helper in a new UTS namespace that sets name n
// to value, and returns it with the names it saw.
func startSetter(t *prop.Trial, n name, value string, forbidden nsfs.ID) (*helper.Process, Names, error) {
	args := setArgs{Kind: n.kind, Value: value, Forbidden: forbidden}
	p, err := t.Start(helper.Spec{Action: "uts.set", Args: args, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
	if err != nil {
		return nil, Names{}, err
	}
	var inside Names
	err = p.Facts(&inside)
	return p, inside, err
}

// checkNameLocal sets name n in a held helper and compares both sides.
func checkNameLocal(t *prop.Trial, n name) error {
	before, forbidden, err := baseline(t)
	if err != nil {
		return err
	}
	value := prop.UniqueName("nscheck-")
	_, inside, err := startSetter(t, n, value, forbidden)
	if err != nil {
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
