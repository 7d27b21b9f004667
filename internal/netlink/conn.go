package netlink

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Timeout bounds every exchange with the kernel.
var Timeout = 2 * time.Second

// Conn is a NETLINK_ROUTE socket, bound to the network namespace it was
// opened in. It is not safe for concurrent use.
type Conn struct {
	fd  int
	seq uint32
}

// Dial opens a NETLINK_ROUTE socket in the calling thread's network
// namespace.
func Dial() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_NETLINK, NETLINK_ROUTE): %w", err)
	}
	c := &Conn{fd: fd, seq: uint32(time.Now().UnixNano())}
	if err := c.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *Conn) setup() error {
	if err := unix.Bind(c.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(Timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set netlink receive timeout: %w", err)
	}
	// Best effort: the kernel's own words in errors, requests not echoed.
	_ = unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return nil
}

// DialAt opens a NETLINK_ROUTE socket in the network namespace of the nsfs
// file at nsPath (/proc/<pid>/ns/net). It enters that namespace on one
// locked OS thread only, and a thread that cannot return to its own
// namespace is never reused (it stays locked and dies with its goroutine).
// Needs CAP_SYS_ADMIN over both namespaces.
func DialAt(nsPath string) (*Conn, error) {
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer target.Close()
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open own netns: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns(%s, CLONE_NEWNET): %w", nsPath, err)}
			return
		}
		c, dialErr := Dial()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the runtime kills this thread when we return.
			if c != nil {
				c.Close()
			}
			ch <- result{err: fmt.Errorf("setns back to own netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, dialErr}
	}()
	r := <-ch
	return r.c, r.err
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// send writes one request and returns its sequence number.
func (c *Conn) send(r *request) (uint32, error) {
	c.seq++
	if err := unix.Sendto(c.fd, r.bytes(c.seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("netlink send: %w", err)
	}
	return c.seq, nil
}

// receive reads answers to seq and hands each non-control message to fn,
// until the ACK (or error) of a plain request or NLMSG_DONE of a dump.
func (c *Conn) receive(seq uint32, fn func(Message) error) error {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("netlink receive: no answer within %v", Timeout)
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := ParseMessages(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Seq != seq {
				continue // a stale answer
			}
			switch m.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				return ParseError(m)
			}
			if fn != nil {
				if err := fn(m); err != nil {
					return err
				}
			}
		}
	}
}

// do sends a request that asks for an ACK and waits for it.
func (c *Conn) do(op string, r *request) error {
	seq, err := c.send(r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := c.receive(seq, nil); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Links lists the namespace's links (RTM_GETLINK dump), in kernel order.
func (c *Conn) Links() ([]Link, error) {
	seq, err := c.send(getLinkRequest())
	if err != nil {
		return nil, fmt.Errorf("RTM_GETLINK: %w", err)
	}
	var links []Link
	err = c.receive(seq, func(m Message) error {
		if m.Type != unix.RTM_NEWLINK {
			return nil
		}
		l, err := ParseLink(m)
		if err != nil {
			return err
		}
		links = append(links, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("RTM_GETLINK dump: %w", err)
	}
	return links, nil
}

// LinkByName finds a link by name.
func (c *Conn) LinkByName(name string) (Link, error) {
	links, err := c.Links()
	if err != nil {
		return Link{}, err
	}
	for _, l := range links {
		if l.Name == name {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("link %q: %w", name, unix.ENODEV)
}

// Veth describes a veth pair to create.
type Veth struct {
	Name, Peer string
	// PeerNS, when set, is an open nsfs file of the network namespace the
	// peer is created in; nil keeps both ends here.
	PeerNS *os.File
	// Index and PeerIndex request ifindexes (0: the kernel picks; the
	// kernel ignores PeerIndex without Index). Ends whose ifindexes differ
	// come up at once: the kernel treats the carrier change of a stacked
	// device whose ifindex equals its peer's (as the first links of two
	// fresh namespaces do) as not urgent and delays it by up to a second.
	Index, PeerIndex int
}

// AddVeth creates a veth pair.
func (c *Conn) AddVeth(v Veth) error {
	return c.do("RTM_NEWLINK veth "+v.Name, vethRequest(v))
}

// SetUp brings a link up (IFF_UP).
func (c *Conn) SetUp(index int) error {
	return c.do(fmt.Sprintf("RTM_NEWLINK up %d", index), setUpRequest(index))
}

// WaitOperUp waits until the link named name is operationally up, at most
// for Timeout. A link set up with SetUp only carries packets once the kernel
// has processed its carrier (linkwatch); an ARP request sent earlier is
// dropped and retried only a second later.
func (c *Conn) WaitOperUp(name string) (Link, error) {
	deadline := time.Now().Add(Timeout)
	for {
		l, err := c.LinkByName(name)
		if err != nil || l.OperUp() {
			return l, err
		}
		if time.Now().After(deadline) {
			return l, fmt.Errorf("link %s not operationally up within %v (operstate %d)", name, Timeout, l.OperState)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// AddAddr adds an IPv4 address with its prefix to a link.
func (c *Conn) AddAddr(index int, p Prefix) error {
	r, err := addAddrRequest(index, p)
	if err != nil {
		return err
	}
	return c.do(fmt.Sprintf("RTM_NEWADDR %s dev %d", p, index), r)
}

// DelLink deletes a link (both ends of a veth pair go together).
func (c *Conn) DelLink(index int) error {
	return c.do(fmt.Sprintf("RTM_DELLINK %d", index), delLinkRequest(index))
}

func getLinkRequest() *request {
	return newRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, ifInfomsg(0, 0, 0))
}

const createFlags = unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_EXCL

func vethRequest(v Veth) *request {
	r := newRequest(unix.RTM_NEWLINK, createFlags, ifInfomsg(v.Index, 0, 0))
	r.str(unix.IFLA_IFNAME, v.Name)
	r.nest(unix.IFLA_LINKINFO, func() {
		r.str(unix.IFLA_INFO_KIND, "veth")
		r.nest(unix.IFLA_INFO_DATA, func() {
			r.nest(vethInfoPeer, func() {
				r.raw(ifInfomsg(v.PeerIndex, 0, 0))
				r.str(unix.IFLA_IFNAME, v.Peer)
				if v.PeerNS != nil {
					r.u32(unix.IFLA_NET_NS_FD, uint32(v.PeerNS.Fd()))
				}
			})
		})
	})
	return r
}

func setUpRequest(index int) *request {
	return newRequest(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ifInfomsg(index, unix.IFF_UP, unix.IFF_UP))
}

func addAddrRequest(index int, p Prefix) (*request, error) {
	if p.Bits < 0 || p.Bits > 32 {
		return nil, fmt.Errorf("RTM_NEWADDR: prefix length %d of %s is out of range", p.Bits, p)
	}
	r := newRequest(unix.RTM_NEWADDR, createFlags, ifAddrmsg(index, p.Bits))
	r.attr(unix.IFA_LOCAL, p.Addr[:])
	r.attr(unix.IFA_ADDRESS, p.Addr[:])
	return r, nil
}

func delLinkRequest(index int) *request {
	return newRequest(unix.RTM_DELLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ifInfomsg(index, 0, 0))
}
