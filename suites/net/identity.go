package net

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/netlink"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// Devices are compared by identity, not by name. Besides lo, the kernel
// gives every network namespace its own fallback device of each tunnel
// driver that is built in or loaded: sit0 (sit), tunl0 (ipip), gre0,
// gretap0 and erspan0 (gre), ip6tnl0, ip6gre0, ip_vti0, ip6_vti0. A host
// with `modprobe sit` has a sit0, and so has every new namespace: that is
// not the host's sit0 seen inside, and not a leak.
//
// Which devices those are is not a list of names taken on trust: a second
// helper in a fresh network namespace of its own (freshNamespace; it gets
// the flag even in a control) reports what a namespace has before anyone
// adds to it. A device is the namespace's own when the fresh namespace has
// one of that name and, by its kind (IFLA_INFO_KIND), it is lo or a
// fallback tunnel: a host veth or dummy that happens to be called sit0 is
// still the host's. The fresh namespace is read through another interface
// than the one a property tests (its /proc/self/net/dev for a check of the
// dump, its dump for a check of /proc/<pid>/net/dev or sysfs), so that a
// kernel that leaks the host's links through one of them cannot excuse its
// own leak; and it must not be the observer's namespace, or CLONE_NEWNET
// did nothing.
//
// Name, kind and ifindex alone cannot tell the host's sit0 from a
// namespace's own: ifindexes are allocated per namespace, so a fresh
// namespace's lo and sit0 are 1:lo and 2:sit0, exactly as the host's are.
// What tells them apart is that one namespace has one device of a name
// and one of an ifindex: a dump that lists a name or an ifindex twice has
// walked another namespace's devices as well (a kernel whose RTM_GETLINK
// dump goes on into the initial namespace lists 1:lo 2:sit0 1:lo 2:sit0),
// and the second of them is not the namespace's own, whatever its kind.
// The fresh namespace's dump is no witness of its own then: a fallback
// name it excuses in /proc/net/dev or sysfs must be in its
// /proc/self/net/dev too, so that a host's sit1 (a tunnel of kind sit the
// broken dump lists) is not taken for a device every namespace has.

// fallbackKinds are the IFLA_INFO_KIND of the per-namespace fallback
// devices of the tunnel drivers.
var fallbackKinds = map[string]bool{
	"sit": true, "ipip": true, "gre": true, "gretap": true, "erspan": true,
	"ip6tnl": true, "ip6gre": true, "ip6gretap": true, "ip6erspan": true,
	"vti": true, "vti6": true,
}

// fresh is what a fresh network namespace has.
type fresh struct {
	Links []netlink.Link
	Dev   []string
}

// ownLink reports whether l, a link of the netlink dump, is a device every
// namespace has of its own: lo, or a fallback tunnel that the fresh
// namespace's /proc/net/dev lists too.
func (f fresh) ownLink(l netlink.Link) bool {
	if l.Name == "lo" && l.Flags&unix.IFF_LOOPBACK != 0 {
		return true
	}
	return fallbackKinds[l.Kind] && slices.Contains(f.Dev, l.Name)
}

// ownDevName reports whether the device called name (in /proc/net/dev or
// sysfs, which give no kind) is one every namespace has of its own: lo, or
// a name the fresh namespace's dump gives to a fallback tunnel.
func (f fresh) ownDevName(name string) bool {
	if name == "lo" {
		return slices.ContainsFunc(f.Links, func(l netlink.Link) bool { return l.Name == name && l.Flags&unix.IFF_LOOPBACK != 0 })
	}
	return slices.Contains(f.Dev, name) && slices.ContainsFunc(f.Links, func(l netlink.Link) bool {
		return l.Name == name && fallbackKinds[l.Kind]
	})
}

// second reports whether dump[i] repeats the name or the ifindex of an
// earlier device of dump: one namespace has one device of each, so it is
// another namespace's.
func second(dump []netlink.Link, i int) bool {
	return slices.ContainsFunc(dump[:i], func(e netlink.Link) bool {
		return e.Name == dump[i].Name || e.Index == dump[i].Index
	})
}

type freshFacts struct {
	NS    string         `json:"ns"`
	Links []netlink.Link `json:"links"`
	Dev   []string       `json:"dev"`
}

func init() {
	helper.Handle("net.fresh", func(struct{}) (any, error) {
		id, err := nsfs.Of(0, "net")
		if err != nil {
			return nil, err
		}
		f := freshFacts{NS: id.String()}
		if f.Links, err = links(); err != nil {
			return nil, err
		}
		if f.Dev, err = procNetDev(0); err != nil {
			return nil, err
		}
		return f, nil
	})
}

// freshNamespace lists the devices of a fresh network namespace: a helper
// cloned with CLONE_NEWNET in the real run and in the control alike (it
// describes the kernel, not the namespace under test). It expects that
// namespace not to be the observer's.
func freshNamespace(t *prop.Trial) (fresh, error) {
	s := helper.Spec{Action: "net.fresh", Cloneflags: unix.CLONE_NEWNET}
	t.Flags(&s)
	s.Cloneflags |= unix.CLONE_NEWNET
	var f freshFacts
	if err := helper.Run(t.Context(), s, &f); err != nil {
		return fresh{}, err
	}
	own, err := nsfs.Of(0, "net")
	if err != nil {
		return fresh{}, err
	}
	t.Host("a fresh namespace's links", names(f.Links))
	t.Host("a fresh namespace's /proc/self/net/dev", f.Dev)
	t.Expect(f.NS != own.String(), "a helper cloned with CLONE_NEWNET is in the observer's network namespace %s", own)
	if f.NS == own.String() {
		// Nothing can be excused by a namespace that is the host's.
		return fresh{}, nil
	}
	return fresh{Links: f.Links, Dev: f.Dev}, nil
}

// foreignLinks are the links of inside that are not the namespace's own
// (lo, the fallback devices: see fresh), rendered as evidence.
func foreignLinks(inside []netlink.Link, f fresh) []string {
	var out []string
	for i, l := range inside {
		switch {
		case second(inside, i):
			out = append(out, l.String()+kindSuffix(l)+" a second time (a namespace has one device of a name and of an ifindex: another namespace's)")
		case !f.ownLink(l):
			out = append(out, l.String()+kindSuffix(l))
		}
	}
	return out
}

// foreignDevs are the device names of devs that are not the namespace's
// own.
func foreignDevs(devs []string, f fresh) []string {
	var out []string
	for _, d := range devs {
		if !f.ownDevName(d) {
			out = append(out, d)
		}
	}
	return out
}

// hostLinkLeaks compares the host's links with those seen inside (the
// dump) and in the helper's /proc/<pid>/net/dev, the namespace's own
// devices aside on both sides: every host link seen inside by name or
// whose ifindex is taken inside is a leak, described. Of lo, sit0 ... the
// namespace has its own: the host's is seen inside when the dump lists
// the name more than once.
func hostLinkLeaks(host, inside []netlink.Link, procDev []string, f fresh) []string {
	var leaks []string
	for _, h := range host {
		if f.ownLink(h) {
			var seen []netlink.Link
			for _, in := range inside {
				if in.Name == h.Name {
					seen = append(seen, in)
				}
			}
			if len(seen) > 1 {
				leaks = append(leaks, fmt.Sprintf("the host's interface %s%s is visible inside: the dump lists %s %d times (%v), and a namespace has one device of a name, its own",
					h, kindSuffix(h), h.Name, len(seen), names(seen)))
			}
			continue
		}
		for _, in := range inside {
			if f.ownLink(in) {
				continue // its ifindex is per namespace: no identity
			}
			if in.Name == h.Name {
				leaks = append(leaks, fmt.Sprintf("the host's interface %s%s is visible inside (as %s%s)", h, kindSuffix(h), in, kindSuffix(in)))
			}
			if in.Index == h.Index {
				leaks = append(leaks, fmt.Sprintf("the host's ifindex %d (%s) is in use inside by %s", h.Index, h.Name, in))
			}
		}
		if slices.Contains(procDev, h.Name) {
			leaks = append(leaks, fmt.Sprintf("the helper's /proc/<pid>/net/dev lists the host's %s", h.Name))
		}
	}
	return leaks
}

func kindSuffix(l netlink.Link) string {
	if l.Kind == "" {
		return ""
	}
	return " (" + l.Kind + ")"
}
