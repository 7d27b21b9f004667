package net

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/netlink"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// linksArgs asks a helper to list its links, then optionally to create a
// veth pair (and list again) or to probe whether veth pairs can be made.
type linksArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	// Pair, when set, is created in the helper's namespace: [name, peer].
	Pair []string `json:"pair,omitempty"`
	// Probe creates and deletes a throwaway pair.
	Probe bool `json:"probe,omitempty"`
}

type linksFacts struct {
	Links []netlink.Link `json:"links"`
	// Veth is the outcome of creating Pair or the probe pair.
	Veth  string         `json:"veth,omitempty"`
	After []netlink.Link `json:"after,omitempty"`
}

func init() {
	helper.Handle("net.links", listLinks)
}

func listLinks(a linksArgs) (any, error) {
	c, err := netlink.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var f linksFacts
	if f.Links, err = c.Links(); err != nil {
		return nil, err
	}
	pair := a.Pair
	if a.Probe {
		pair = []string{prop.UniqueName("probe"), prop.UniqueName("probe")}
	}
	if len(pair) != 2 {
		return f, nil
	}
	err = addVeth(c, a.Forbidden, netlink.Veth{Name: pair[0], Peer: pair[1]}, "")
	f.Veth = errname.Of(err)
	switch {
	case err != nil && vethUnavailable(err):
		return f, nil // the outcome says it
	case err != nil:
		return nil, err
	}
	if a.Probe {
		l, err := c.LinkByName(pair[0])
		if err == nil {
			err = c.DelLink(l.Index)
		}
		if err != nil {
			return nil, err
		}
	}
	if !a.Probe {
		f.After, err = c.Links()
	}
	return f, err
}

// observeLinks lists the links of a helper in a new network namespace from
// both sides, and the host's own. Its control gives the sandbox a veth pair
// (sandboxLinks): its properties have the veth premise.
func observeLinks(t *prop.Trial) (inside linksFacts, procDev []string, host []netlink.Link, err error) {
	if err = sandboxLinks(t); err != nil {
		return
	}
	var a linksArgs
	if a.Forbidden, err = t.Forbidden("net"); err != nil {
		return
	}
	p, err := startNet(t, "net.links", a, &inside)
	if err != nil {
		return
	}
	if procDev, err = procNetDev(p.PID()); err != nil {
		return
	}
	if host, err = links(); err != nil {
		return
	}
	t.Inside("links", names(inside.Links))
	t.Host("/proc/"+itoa(p.PID())+"/net/dev", procDev)
	t.Host("links", names(host))
	return
}

var _ = prop.Register(prop.Property{
	ID: "net.loopback-only",
	Title: "a new network namespace has lo and otherwise only the devices the kernel gives every namespace (sit0, tunl0 ... of a loaded tunnel driver, " +
		"as a fresh namespace has them), seen inside by RTM_GETLINK and from the host in /proc/<pid>/net/dev",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, vethPremise},
	Check: func(t *prop.Trial) error {
		inside, procDev, _, err := observeLinks(t)
		if err != nil {
			return err
		}
		f, err := freshNamespace(t)
		if err != nil {
			return err
		}
		t.Expect(slices.ContainsFunc(inside.Links, func(l netlink.Link) bool { return l.Name == "lo" && l.Flags&unix.IFF_LOOPBACK != 0 }),
			"inside, the new network namespace has no lo: %v", names(inside.Links))
		extra := foreignLinks(inside.Links, f)
		t.Expect(len(extra) == 0, "inside, the new network namespace has %v besides lo and its per-namespace devices", extra)
		extraDev := foreignDevs(procDev, f)
		t.Expect(slices.Contains(procDev, "lo") && len(extraDev) == 0, "the host sees %v in the helper's /proc/<pid>/net/dev besides lo and its per-namespace devices (all: %v)", extraDev, procDev)
		return nil
	},
})

var _ = prop.Register(prop.Property{
	ID: "net.host-links-hidden",
	Title: "no host interface (by name or ifindex) is visible inside a new network namespace; lo and the per-namespace fallback devices " +
		"(sit0, tunl0 ...), which every namespace has of its own, are told apart by kind and by a fresh namespace",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, vethPremise},
	Check: func(t *prop.Trial) error {
		inside, procDev, host, err := observeLinks(t)
		if err != nil {
			return err
		}
		f, err := freshNamespace(t)
		if err != nil {
			return err
		}
		for _, leak := range hostLinkLeaks(host, inside.Links, procDev, f) {
			t.Expect(false, "%s", leak)
		}
		return nil
	},
})

var _ = prop.Register(prop.Property{
	ID:       "net.link-no-leak",
	Title:    "a veth pair created inside a new network namespace is absent on the host",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, vethPremise},
	Check:    linkNoLeak,
})

func linkNoLeak(t *prop.Trial) error {
	a := linksArgs{Pair: []string{prop.UniqueName("nsk"), prop.UniqueName("nsk")}}
	var err error
	if a.Forbidden, err = t.Forbidden("net"); err != nil {
		return err
	}
	var inside linksFacts
	p, err := startNet(t, "net.links", a, &inside)
	if err != nil {
		return err
	}
	if err := skipWithoutVeth(inside.Veth, "creating a veth pair inside"); err != nil {
		return err
	}
	procDev, err := procNetDev(p.PID())
	if err != nil {
		return err
	}
	host, err := links()
	if err != nil {
		return err
	}
	t.Inside("pair", a.Pair)
	t.Inside("links after", names(inside.After))
	t.Host("/proc/"+itoa(p.PID())+"/net/dev", procDev)
	t.Host("links", names(host))
	for _, n := range a.Pair {
		t.Expect(slices.ContainsFunc(inside.After, func(l netlink.Link) bool { return l.Name == n && l.Kind == "veth" }), "inside, the veth %s it created is not listed", n)
		t.Expect(slices.Contains(procDev, n), "the helper's /proc/<pid>/net/dev does not list its veth %s", n)
		t.Expect(!slices.ContainsFunc(host, func(l netlink.Link) bool { return l.Name == n }), "the veth %s created inside is visible on the host", n)
	}
	return nil
}
