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

// What each property makes of a dump seen inside, by the shape of the
// kernel: on a host with lo and sit0 only, a namespace's own 1:lo 2:sit0
// are the host's names, kinds and ifindexes; only a device listed twice
// gives away a dump that walked the host's namespace too.
func TestDumpShapes(t *testing.T) {
	hostVeth := netlink.Link{Index: 3, Name: "veth0", Kind: "veth"}
	onlySit := fresh{Links: []netlink.Link{lo, sit0}, Dev: []string{"lo", "sit0"}}
	// The fresh namespace's dump is as broken as the one under test.
	mutantFresh := fresh{Links: []netlink.Link{lo, sit0, lo, sit0}, Dev: []string{"lo", "sit0"}}
	for _, c := range []struct {
		name    string
		host    []netlink.Link
		inside  []netlink.Link
		procDev []string
		fresh   fresh
		// leaks and foreign are the substrings hostLinkLeaks and
		// foreignLinks must name, in order; none: a pass.
		leaks, foreign []string
	}{{
		name:   "correct kernel, per-namespace lo and sit0",
		host:   []netlink.Link{lo, sit0},
		inside: []netlink.Link{lo, sit0}, procDev: []string{"lo", "sit0"}, fresh: onlySit,
	}, {
		name:   "dump goes on into the initial namespace (net-link-dump-init-ns)",
		host:   []netlink.Link{lo, sit0},
		inside: []netlink.Link{lo, sit0, lo, sit0}, procDev: []string{"lo", "sit0"}, fresh: mutantFresh,
		leaks:   []string{"host's interface 1:lo is visible inside: the dump lists lo 2 times", "host's interface 2:sit0 (sit) is visible inside: the dump lists sit0 2 times"},
		foreign: []string{"1:lo a second time", "2:sit0 (sit) a second time"},
	}, {
		name:   "the same dump on a host with a veth",
		host:   []netlink.Link{lo, sit0, hostVeth},
		inside: []netlink.Link{lo, sit0, lo, sit0, hostVeth}, procDev: []string{"lo", "sit0"}, fresh: mutantFresh,
		leaks:   []string{"1:lo is visible", "2:sit0 (sit) is visible", "3:veth0 (veth) is visible inside (as 3:veth0", "ifindex 3 (veth0)"},
		foreign: []string{"1:lo a second time", "2:sit0 (sit) a second time", "3:veth0 (veth)"},
	}, {
		name:   "a host veth in the namespace's dump and /proc/<pid>/net/dev",
		host:   []netlink.Link{lo, sit0, hostVeth},
		inside: []netlink.Link{lo, sit0, hostVeth}, procDev: []string{"lo", "sit0", "veth0"}, fresh: onlySit,
		leaks:   []string{"3:veth0 (veth) is visible inside", "ifindex 3 (veth0)", "/proc/<pid>/net/dev lists the host's veth0"},
		foreign: []string{"3:veth0 (veth)"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			leaks := hostLinkLeaks(c.host, c.inside, c.procDev, c.fresh)
			foreign := foreignLinks(c.inside, c.fresh)
			for _, got := range []struct {
				what      string
				got, want []string
			}{{"hostLinkLeaks", leaks, c.leaks}, {"foreignLinks", foreign, c.foreign}} {
				if len(got.got) != len(got.want) {
					t.Fatalf("%s = %q, want %d naming %q", got.what, got.got, len(got.want), got.want)
				}
				for i, w := range got.want {
					if !strings.Contains(got.got[i], w) {
						t.Errorf("%s[%d] = %q, want it to name %q", got.what, i, got.got[i], w)
					}
				}
			}
		})
	}
	// The broken fresh dump still says which names a namespace has of
	// its own (its /proc/self/net/dev does too), not the host's sit1.
	sit1 := netlink.Link{Index: 3, Name: "sit1", Kind: "sit"}
	leaky := fresh{Links: []netlink.Link{lo, sit0, lo, sit0, sit1}, Dev: []string{"lo", "sit0"}}
	if !leaky.ownDevName("sit0") || !leaky.ownDevName("lo") || leaky.ownDevName("sit1") {
		t.Errorf("a fresh dump listing the host's lo, sit0, sit1 too: ownDevName(sit0, lo, sit1) = %v, %v, %v; want true, true, false",
			leaky.ownDevName("sit0"), leaky.ownDevName("lo"), leaky.ownDevName("sit1"))
	}
}
