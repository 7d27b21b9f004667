package net

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/netlink"
)

// A host with `modprobe sit ipip` (or IPV6_SIT=y): every namespace has its
// own sit0 and tunl0, the host's and a new one's at the same ifindexes.
var (
	lo      = netlink.Link{Index: 1, Name: "lo", Flags: unix.IFF_LOOPBACK | unix.IFF_UP}
	sit0    = netlink.Link{Index: 2, Name: "sit0", Kind: "sit"}
	tunl0   = netlink.Link{Index: 3, Name: "tunl0", Kind: "ipip"}
	eth0    = netlink.Link{Index: 4, Name: "eth0"}
	withSit = fresh{Links: []netlink.Link{lo, sit0, tunl0}, Dev: []string{"lo", "sit0", "tunl0"}}
)

func TestFallbackDevicesAreNotLeaks(t *testing.T) {
	host := []netlink.Link{lo, sit0, tunl0, eth0}
	inside := []netlink.Link{lo, sit0, tunl0}
	if leaks := hostLinkLeaks(host, inside, []string{"lo", "sit0", "tunl0"}, withSit); len(leaks) != 0 {
		t.Errorf("per-namespace fallback devices reported as leaks: %v", leaks)
	}
	if extra := foreignLinks(inside, withSit); len(extra) != 0 {
		t.Errorf("foreignLinks(%v) = %v, want none", inside, extra)
	}
	if extra := foreignDevs([]string{"lo", "sit0", "tunl0"}, withSit); len(extra) != 0 {
		t.Errorf("foreignDevs = %v, want none", extra)
	}
}

func TestHostLinkIsALeak(t *testing.T) {
	host := []netlink.Link{lo, sit0, eth0}
	inside := []netlink.Link{lo, sit0, {Index: 7, Name: "eth0"}}
	leaks := hostLinkLeaks(host, inside, []string{"eth0", "lo", "sit0"}, withSit)
	if len(leaks) != 2 || !strings.Contains(leaks[0], "eth0") || !strings.Contains(leaks[1], "/proc/<pid>/net/dev") {
		t.Errorf("host's eth0 inside: leaks %v, want it by name and in /proc/<pid>/net/dev", leaks)
	}
	if extra := foreignDevs([]string{"eth0", "lo"}, withSit); !slices.Equal(extra, []string{"eth0"}) {
		t.Errorf("foreignDevs = %v, want [eth0]", extra)
	}
}

// A host veth (or dummy) called sit0 on a kernel without sit is the host's:
// the name alone excuses nothing.
func TestNameAlikeIsALeak(t *testing.T) {
	fake := netlink.Link{Index: 5, Name: "sit0", Kind: "veth"}
	noSit := fresh{Links: []netlink.Link{lo}, Dev: []string{"lo"}}
	if leaks := hostLinkLeaks([]netlink.Link{lo, fake}, []netlink.Link{lo, fake}, nil, noSit); len(leaks) == 0 {
		t.Error("a host veth named sit0 visible inside is not reported")
	}
	// Even where sit is loaded, a veth is not a fallback device.
	if extra := foreignLinks([]netlink.Link{lo, fake}, withSit); len(extra) != 1 {
		t.Errorf("foreignLinks = %v, want the veth named sit0", extra)
	}
	if noSit.ownDevName("sit0") {
		t.Error("sit0 counted as per-namespace where a fresh namespace has none")
	}
}

// The ifindex of a per-namespace device inside says nothing about the host's
// device of that index.
func TestOwnDeviceIfindexIsNoIdentity(t *testing.T) {
	host := []netlink.Link{lo, {Index: 2, Name: "eth0"}}
	inside := []netlink.Link{lo, sit0}
	if leaks := hostLinkLeaks(host, inside, nil, withSit); len(leaks) != 0 {
		t.Errorf("sit0 at the host's eth0 ifindex reported: %v", leaks)
	}
	// A fresh namespace that is the host's excuses nothing.
	if leaks := hostLinkLeaks([]netlink.Link{lo, sit0}, []netlink.Link{lo, sit0}, nil, fresh{}); len(leaks) == 0 {
		t.Error("without a fresh namespace, the host's sit0 inside is not reported")
	}
}
