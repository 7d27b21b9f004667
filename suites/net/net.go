// Package net holds the network namespace properties: a new network
// namespace starts with nothing but lo (and the fallback devices the kernel
// gives every namespace: identity.go), sees none of the host's interfaces
// through any interface that lists links (the netlink dump,
// /proc/<pid>/net/dev, sysfs), and keeps its links, ports, abstract unix
// sockets and per-namespace sysctls to itself, in both directions (paths.go);
// a socket stays in the namespace it was made in; a veth pair joins two
// namespaces without touching the host's interfaces.
//
// Links are made and listed with internal/netlink (no ip(8): nscheck also
// runs as /init), sockets with internal/rawsock (not the standard net
// package: this package is linked into the helper binary, and every helper
// exec would pay net's initialisers). Every helper that creates a link,
// brings one up or writes a sysctl refuses to do so in the host's network
// namespace (nsguard). The controls run in a sandbox with a network
// namespace of its own; where the check needs the host to look like one (an
// interface besides lo, lo up), the sandbox is given that first, never the
// real host.
package net

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/netlink"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// vethUnavailable reports whether err says the kernel has no veth driver
// (RTM_NEWLINK: EOPNOTSUPP "Unknown device type", or ENODEV).
func vethUnavailable(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV)
}

// vethUnmet is the unmet veth premise: making a pair (for what) gave
// outcome.
func vethUnmet(what, outcome string) *prop.UnmetError {
	return prop.Unmet(fmt.Sprintf("this kernel cannot make a veth pair (%s gave %s: no veth driver, CONFIG_VETH unset or its module not loaded)", what, outcome),
		"modprobe veth, or build the kernel with CONFIG_VETH=y (or =m with its module installed)")
}

// netAdmin is the premise of every check that makes links, brings one up
// or writes a network sysctl in the namespaces it creates.
var netAdmin = prop.Capability(unix.CAP_NET_ADMIN, "configuring links and sysctls in the new network namespaces")

// vethPremise is the premise of the checks that make veth pairs (or whose
// control gives its sandbox one): the kernel has the veth link kind. It is
// probed by a helper in a new network namespace that makes a pair and
// deletes it (net.links with Probe); without CAP_NET_ADMIN it cannot be
// probed, and is unmet as netAdmin is.
var vethPremise = prop.Premise{Key: "link:veth", Why: "veth pairs between network namespaces", Probe: func(ctx context.Context) error {
	if err := netAdmin.Holds(ctx); err != nil {
		return err // the probe pair would be refused (EPERM): unknown
	}
	self, err := nsfs.Of(0, "net")
	if err != nil {
		return err
	}
	var f linksFacts
	s := helper.Spec{Action: "net.links", Args: linksArgs{Forbidden: self, Probe: true}, Cloneflags: unix.CLONE_NEWNET}
	if err := prop.RunProbe(ctx, s, &f); err != nil {
		return err
	}
	return skipWithoutVeth(f.Veth, "creating a veth pair in a new network namespace")
}}

// links lists the links of the calling thread's network namespace.
func links() ([]netlink.Link, error) {
	c, err := netlink.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Links()
}

// names renders links as "index:name" evidence.
func names(ls []netlink.Link) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

// procNetDev lists the interface names in /proc/<pid>/net/dev: the host's
// view of the network namespace of pid.
func procNetDev(pid int) ([]string, error) {
	names, err := procfile.ReadNetDev(pid)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// setUp brings the link named name up in the calling thread's namespace.
func setUp(c *netlink.Conn, name string) (netlink.Link, error) {
	l, err := c.LinkByName(name)
	if err != nil {
		return l, err
	}
	return l, c.SetUp(l.Index)
}

// loUp brings lo up in the calling thread's network namespace, after
// checking that it is not forbidden (the host's).
func loUp(forbidden nsfs.ID) error {
	if err := nsguard.Refuse("net", forbidden); err != nil {
		return err
	}
	c, err := netlink.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = setUp(c, "lo")
	return err
}

// addVeth creates the pair v in the calling thread's namespace (not the
// forbidden one), the peer in the namespace of the nsfs file peerNS when
// that is set.
func addVeth(c *netlink.Conn, forbidden nsfs.ID, v netlink.Veth, peerNS string) error {
	if err := nsguard.Refuse("net", forbidden); err != nil {
		return err
	}
	if peerNS != "" {
		id, err := nsfs.Stat(peerNS)
		if err != nil {
			return err
		}
		if forbidden != (nsfs.ID{}) && id == forbidden {
			return fmt.Errorf("refusing to move a veth end into the host's network namespace %s", id)
		}
		f, err := os.Open(peerNS)
		if err != nil {
			return fmt.Errorf("open %s: %w", peerNS, err)
		}
		defer f.Close()
		v.PeerNS = f
	}
	return c.AddVeth(v)
}

// sandboxLinks gives a control's sandbox (the disposable host) an interface
// besides lo, as a real host has, so that a helper sharing its network
// namespace has something to see. Never called for the real host.
func sandboxLinks(t *prop.Trial) error {
	if !t.Sandboxed {
		return nil
	}
	c, err := netlink.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := addVeth(c, nsfs.ID{}, netlink.Veth{Name: prop.UniqueName("host"), Peer: prop.UniqueName("host")}, ""); err != nil {
		return fmt.Errorf("give the sandbox a host interface: %w", err)
	}
	return nil
}

// sandboxLoUp brings up lo of a control's sandbox: a real host's lo is up.
// Never called for the real host.
func sandboxLoUp(t *prop.Trial) error {
	if !t.Sandboxed {
		return nil
	}
	return loUp(nsfs.ID{})
}

// startNet starts a held helper in a new network namespace (as the trial
// says) and decodes its facts into facts.
func startNet(t *prop.Trial, action string, args, facts any) (*helper.Process, error) {
	p, err := t.Start(helper.Spec{Action: action, Args: args, Cloneflags: unix.CLONE_NEWNET, Hold: true})
	if err != nil {
		return nil, err
	}
	return p, p.Facts(facts)
}

// skipWithoutVeth is the unmet veth premise, when a helper reports that
// creating a pair (for why) gave outcome; nil when it worked or was not
// tried.
func skipWithoutVeth(outcome, why string) error {
	if outcome == "" || outcome == errname.OK {
		return nil
	}
	return vethUnmet(why, outcome)
}

func itoa(i int) string { return strconv.Itoa(i) }
