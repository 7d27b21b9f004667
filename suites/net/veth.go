package net

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/netlink"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/rawsock"
	"github.com/nscheck/nscheck/prop"
)

// The two ends of the pair, in namespaces of their own: any /30 will do.
var (
	localAddr = netlink.Prefix{Addr: [4]byte{10, 254, 254, 1}, Bits: 30}
	peerAddr  = netlink.Prefix{Addr: [4]byte{10, 254, 254, 2}, Bits: 30}
)

// The ifindexes asked for the two ends: in fresh namespaces the kernel
// would give both the same one (2). The kernel honours a peer's ifindex only
// when the first end's is given too.
const (
	localIndex = 41
	peerIndex  = 42
)

// echoFacts is what the echo helper (one end) reports before serving.
type echoFacts struct {
	Port int    `json:"port"`
	NS   string `json:"ns"`
}

// exchangeArgs drives the other end: create the pair, the peer in PeerNS,
// address and bring up both ends, then send to the echo helper at Port.
type exchangeArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	PeerNS    string  `json:"peer_ns"`
	Name      string  `json:"name"`
	Peer      string  `json:"peer"`
	Port      int     `json:"port"`
	Nonce     string  `json:"nonce"`
}

type exchangeFacts struct {
	Veth     string         `json:"veth"`
	Links    []netlink.Link `json:"links,omitempty"`
	Exchange string         `json:"exchange,omitempty"`
	Reply    string         `json:"reply,omitempty"`
	From     string         `json:"from,omitempty"`
}

func init() {
	helper.Handle("net.udp-echo", udpEcho)
	helper.Handle("net.veth-exchange", vethExchange)
}

// udpEcho binds a UDP socket on every address of its namespace and, while
// held (at most for its lifetime, helper.DefaultTimeout), answers each
// datagram with the datagram and its namespace's id.
func udpEcho(struct{}) (any, error) {
	id, err := nsfs.Of(0, "net")
	if err != nil {
		return nil, err
	}
	conn, err := rawsock.ListenPacket(&unix.SockaddrInet4{})
	if err != nil {
		return nil, helper.Fail("listen udp", err)
	}
	keep(conn)
	port, err := conn.Port()
	if err != nil {
		return nil, err
	}
	go serveEcho(conn, " from "+id.String(), time.Now().Add(helper.DefaultTimeout))
	return echoFacts{Port: port, NS: id.String()}, nil
}

// serveEcho answers each datagram on conn with the datagram and suffix,
// until deadline or the first error.
func serveEcho(conn *rawsock.Socket, suffix string, deadline time.Time) {
	buf := make([]byte, 512)
	for {
		n, from, err := conn.RecvFrom(buf, deadline)
		if err != nil {
			return
		}
		_ = conn.SendTo(append(buf[:n:n], suffix...), from, deadline)
	}
}

func vethExchange(a exchangeArgs) (any, error) {
	c, err := netlink.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var f exchangeFacts
	// Distinct ifindexes at both ends: see netlink.Veth.
	err = addVeth(c, a.Forbidden, netlink.Veth{Name: a.Name, Peer: a.Peer, Index: localIndex, PeerIndex: peerIndex}, a.PeerNS)
	if f.Veth = errname.Of(err); err != nil {
		if vethUnavailable(err) {
			return f, nil
		}
		return nil, err
	}
	if err := configure(c, a.Name, localAddr); err != nil {
		return nil, err
	}
	pc, err := netlink.DialAt(a.PeerNS)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	if err := configure(pc, a.Peer, peerAddr); err != nil {
		return nil, err
	}
	// Both ends must carry packets before the first one is sent: an ARP
	// request sent earlier is dropped and only retried a second later.
	if _, err := c.WaitOperUp(a.Name); err != nil {
		return nil, err
	}
	if _, err := pc.WaitOperUp(a.Peer); err != nil {
		return nil, err
	}
	if f.Links, err = c.Links(); err != nil {
		return nil, err
	}
	reply, from, err := exchange(a.Port, a.Nonce)
	f.Exchange, f.Reply, f.From = errname.Of(err), reply, from
	return f, nil
}

// configure addresses and brings up one end of the pair.
func configure(c *netlink.Conn, name string, addr netlink.Prefix) error {
	l, err := c.LinkByName(name)
	if err != nil {
		return err
	}
	if err := c.AddAddr(l.Index, addr); err != nil {
		return err
	}
	return c.SetUp(l.Index)
}

// exchange sends nonce from the local end to the echo helper behind the
// peer end, resending until the answer comes (the link may still be coming
// up), at most for two seconds. It returns the answer and where it came
// from. The socket is not connected: an answer from an unexpected address
// is evidence, not silence.
func exchange(port int, nonce string) (reply, from string, err error) {
	conn, err := rawsock.ListenPacket(&unix.SockaddrInet4{Addr: localAddr.Addr})
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	to := &unix.SockaddrInet4{Addr: peerAddr.Addr, Port: port}
	deadline := time.Now().Add(2 * time.Second)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		if err := conn.SendTo([]byte(nonce), to, deadline); err != nil {
			return "", "", err
		}
		n, src, err := conn.RecvFrom(buf, time.Now().Add(200*time.Millisecond))
		if err == nil && bytes.HasPrefix(buf[:n], []byte(nonce)) {
			return string(buf[:n]), rawsock.Format(src), nil
		}
	}
	return "", "", fmt.Errorf("no echo from %s within 2s", rawsock.Format(to))
}

var _ = prop.Register(prop.Property{
	ID:       "net.veth-connects",
	Title:    "a veth pair across two new network namespaces carries a UDP exchange; no host interface changes",
	Needs:    prop.NeedRoot,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, vethPremise},
	Check:    vethConnects,
})

func vethConnects(t *prop.Trial) error {
	forbidden, err := t.Forbidden("net")
	if err != nil {
		return err
	}
	if err := sandboxLoUp(t); err != nil {
		return err
	}
	before, err := links()
	if err != nil {
		return err
	}
	var ef echoFacts
	echo, err := startNet(t, "net.udp-echo", struct{}{}, &ef)
	if err != nil {
		return err
	}
	a := exchangeArgs{
		Forbidden: forbidden, PeerNS: nsfs.Path(echo.PID(), "net"),
		Name: prop.UniqueName("nsk"), Peer: prop.UniqueName("nsk"),
		Port: ef.Port, Nonce: prop.UniqueName("nonce-"),
	}
	var inside exchangeFacts
	p, err := startNet(t, "net.veth-exchange", a, &inside)
	if err != nil {
		return err
	}
	if err := skipWithoutVeth(inside.Veth, "creating a veth pair across two namespaces"); err != nil {
		return err
	}
	after, err := links()
	if err != nil {
		return err
	}
	echoNS, err := nsfs.Of(echo.PID(), "net")
	if err != nil {
		return err
	}
	senderDev, err := procNetDev(p.PID())
	if err != nil {
		return err
	}
	echoDev, err := procNetDev(echo.PID())
	if err != nil {
		return err
	}
	t.Inside("sender links", names(inside.Links))
	t.Inside("exchange", inside.Exchange)
	t.Inside("reply", inside.Reply)
	t.Inside("reply from", inside.From)
	t.Host("links before", names(before))
	t.Host("links while held", names(after))
	t.Host(fmt.Sprintf("/proc/%d/net/dev (sender)", p.PID()), senderDev)
	t.Host(fmt.Sprintf("/proc/%d/net/dev (echo)", echo.PID()), echoDev)
	t.Host("echo ns", echoNS.String())
	t.Expect(inside.Exchange == errname.OK, "no UDP exchange over the veth pair: %s", inside.Exchange)
	t.Expect(inside.Reply == a.Nonce+" from "+echoNS.String(), "the echo did not come from the peer's namespace %s: %q", echoNS, inside.Reply)
	peer := rawsock.Format(&unix.SockaddrInet4{Addr: peerAddr.Addr, Port: ef.Port})
	t.Expect(inside.From == peer, "the echo did not come over the pair from %s but from %q", peer, inside.From)
	t.Expect(slices.Contains(senderDev, a.Name) && !slices.Contains(senderDev, a.Peer), "the sender's namespace does not hold just its own end: %v", senderDev)
	t.Expect(slices.Contains(echoDev, a.Peer) && !slices.Contains(echoDev, a.Name), "the echo's namespace does not hold just the peer end: %v", echoDev)
	t.Expect(slices.Equal(names(before), names(after)), "the host's interfaces changed from %v to %v", names(before), names(after))
	return nil
}
