// Package netlink speaks just enough rtnetlink (NETLINK_ROUTE) for nscheck's
// network namespace properties: list links, create a veth pair (its peer
// optionally moved into another network namespace by IFLA_NET_NS_FD), bring a
// link up, add an IPv4 address and delete a link.
//
// Why not a library: these messages are sent by helpers, and the lean
// helper keeps package net out (its initialisers cost every helper start;
// internal/helperbin's deps_test.go fails if it comes back), while the Go
// netlink libraries are built on it (vishvananda/netlink: net.IP, net.IPNet,
// net.HardwareAddr in its API).
// Nor can nscheck exec ip(8): it also runs as /init of a bare initramfs.
// The few messages it needs are small, so they are encoded here by hand
// over x/sys/unix; the decoder is unit-tested against a real dump
// (fixtures/netlink) and fuzzed.
//
// A netlink socket belongs to the network namespace of the thread that
// created it: [Dial] talks to the caller's namespace, [DialAt] to the one
// named by an nsfs file.
//
// Wire format (all integers in host byte order, everything 4-byte aligned):
//
//	nlmsghdr   len u32 | type u16 | flags u16 | seq u32 | pid u32   (16 bytes)
//	ifinfomsg  family u8 | pad u8 | type u16 | index i32 | flags u32 | change u32 (16)
//	ifaddrmsg  family u8 | prefixlen u8 | flags u8 | scope u8 | index u32 (8)
//	rtattr     len u16 | type u16 | payload, padded to 4 (len excludes the padding)
//	nested     an rtattr whose payload is more rtattrs (IFLA_LINKINFO ...)
//	veth peer  IFLA_INFO_DATA{ VETH_INFO_PEER{ ifinfomsg, IFLA_IFNAME, IFLA_NET_NS_FD } }
//	NLMSG_ERROR  payload: error i32 (0 = ACK, else -errno) | the request's nlmsghdr ...
package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// vethInfoPeer is VETH_INFO_PEER from linux/veth.h (not in x/sys/unix).
const vethInfoPeer = 1

// RFC 2863 operational states (linux/if.h; not in x/sys/unix).
const (
	OperDown = 2
	OperUp   = 6
)

// nlmFAckTLVs is NLM_F_ACK_TLVS: the error message carries extended-ack
// attributes (the kernel's own text) after the echoed request header.
const nlmFAckTLVs = 0x200

var order = binary.NativeEndian

// Message is one netlink message: its header fields and payload.
type Message struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
	Data  []byte
}

// Attr is one route attribute.
type Attr struct {
	Type uint16
	Data []byte
}

func align(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// ParseMessages splits a buffer received from a netlink socket into
// messages. A malformed length is an error, never a panic.
func ParseMessages(b []byte) ([]Message, error) {
	var msgs []Message
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return msgs, fmt.Errorf("netlink: %d trailing bytes, short of a header", len(b))
		}
		n := int(order.Uint32(b[0:4]))
		if n < unix.SizeofNlMsghdr || n > len(b) {
			return msgs, fmt.Errorf("netlink: message length %d out of range (%d bytes left)", n, len(b))
		}
		msgs = append(msgs, Message{
			Type:  order.Uint16(b[4:6]),
			Flags: order.Uint16(b[6:8]),
			Seq:   order.Uint32(b[8:12]),
			PID:   order.Uint32(b[12:16]),
			Data:  b[unix.SizeofNlMsghdr:n],
		})
		if next := align(n); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
	}
	return msgs, nil
}

// ParseAttrs splits a run of route attributes.
func ParseAttrs(b []byte) ([]Attr, error) {
	var attrs []Attr
	for len(b) > 0 {
		if len(b) < unix.SizeofRtAttr {
			return attrs, fmt.Errorf("netlink: %d trailing bytes, short of an attribute", len(b))
		}
		n := int(order.Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return attrs, fmt.Errorf("netlink: attribute length %d out of range (%d bytes left)", n, len(b))
		}
		// NLA_F_NESTED and NLA_F_NET_BYTEORDER live in the top bits.
		attrs = append(attrs, Attr{Type: order.Uint16(b[2:4]) & 0x3fff, Data: b[unix.SizeofRtAttr:n]})
		if next := align(n); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
	}
	return attrs, nil
}

// Link is what nscheck needs to know about a network interface.
type Link struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Flags are the IFF_* flags (IFF_UP, IFF_LOOPBACK ...).
	Flags uint32 `json:"flags"`
	// Kind is IFLA_INFO_KIND ("veth"), empty for links without one (lo).
	Kind string `json:"kind,omitempty"`
	// OperState is IFLA_OPERSTATE (RFC 2863: OperUp, OperDown; lo says
	// IF_OPER_UNKNOWN, 0).
	OperState uint8 `json:"operstate"`
}

func (l Link) String() string { return fmt.Sprintf("%d:%s", l.Index, l.Name) }

// Prefix is an IPv4 address with the length of its network prefix
// (10.254.254.1/30), as RTM_NEWADDR assigns it. Plain bytes rather than
// net/netip: helpers link this package, and must not pay net/netip's
// initialisers at every exec.
type Prefix struct {
	Addr [4]byte
	Bits int
}

func (p Prefix) String() string {
	return fmt.Sprintf("%d.%d.%d.%d/%d", p.Addr[0], p.Addr[1], p.Addr[2], p.Addr[3], p.Bits)
}

// Up reports whether the link is administratively up.
func (l Link) Up() bool { return l.Flags&unix.IFF_UP != 0 }

// OperUp reports whether the link is operationally up: the kernel has
// seen its carrier and attached its queueing discipline, so it can send.
func (l Link) OperUp() bool { return l.OperState == OperUp }

// ParseLink decodes an RTM_NEWLINK message (a link dump entry).
func ParseLink(m Message) (Link, error) {
	if m.Type != unix.RTM_NEWLINK {
		return Link{}, fmt.Errorf("netlink: message type %d is not RTM_NEWLINK", m.Type)
	}
	if len(m.Data) < unix.SizeofIfInfomsg {
		return Link{}, fmt.Errorf("netlink: RTM_NEWLINK payload of %d bytes is short of an ifinfomsg", len(m.Data))
	}
	l := Link{
		Index: int(int32(order.Uint32(m.Data[4:8]))),
		Flags: order.Uint32(m.Data[8:12]),
	}
	attrs, err := ParseAttrs(m.Data[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, err
	}
	for _, a := range attrs {
		switch a.Type {
		case unix.IFLA_IFNAME:
			l.Name = cString(a.Data)
		case unix.IFLA_OPERSTATE:
			if len(a.Data) > 0 {
				l.OperState = a.Data[0]
			}
		case unix.IFLA_LINKINFO:
			info, err := ParseAttrs(a.Data)
			if err != nil {
				return l, fmt.Errorf("netlink: IFLA_LINKINFO of %s: %w", l.Name, err)
			}
			for _, ia := range info {
				if ia.Type == unix.IFLA_INFO_KIND {
					l.Kind = cString(ia.Data)
				}
			}
		}
	}
	if l.Name == "" {
		return l, fmt.Errorf("netlink: link %d has no IFLA_IFNAME", l.Index)
	}
	return l, nil
}

// ParseError decodes an NLMSG_ERROR message: nil for an ACK, else the errno
// (wrapped with the kernel's extended-ack text when it sent one).
func ParseError(m Message) error {
	if m.Type != unix.NLMSG_ERROR {
		return fmt.Errorf("netlink: message type %d is not NLMSG_ERROR", m.Type)
	}
	if len(m.Data) < 4 {
		return errors.New("netlink: NLMSG_ERROR without an error code")
	}
	code := int32(order.Uint32(m.Data[0:4]))
	if code == 0 {
		return nil
	}
	errno := unix.Errno(-code)
	if m.Flags&nlmFAckTLVs == 0 || len(m.Data) < 4+unix.SizeofNlMsghdr {
		return errno
	}
	// The kernel echoes the request: the whole of it, or only its header
	// when it says so with NLM_F_CAPPED (NETLINK_CAP_ACK).
	echoed := int(order.Uint32(m.Data[4:8]))
	off := 4 + unix.SizeofNlMsghdr
	if m.Flags&unix.NLM_F_CAPPED == 0 && echoed >= unix.SizeofNlMsghdr && 4+echoed <= len(m.Data) {
		off = 4 + align(echoed)
	}
	if off > len(m.Data) {
		return errno
	}
	attrs, err := ParseAttrs(m.Data[off:])
	if err != nil {
		return errno
	}
	for _, a := range attrs {
		if a.Type == unix.NLMSGERR_ATTR_MSG {
			return &KernelError{Errno: errno, Msg: cString(a.Data)}
		}
	}
	return errno
}

// KernelError is an errno with the kernel's extended-ack explanation.
type KernelError struct {
	Errno unix.Errno
	Msg   string
}

func (e *KernelError) Error() string { return e.Errno.Error() + " (" + e.Msg + ")" }

// Unwrap lets errors.Is(err, unix.EOPNOTSUPP) see the errno.
func (e *KernelError) Unwrap() error { return e.Errno }

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// request is a netlink request under construction: the header is filled
// in by bytes(), attributes are appended, nests are patched when closed.
type request struct {
	b []byte
}

func newRequest(typ, flags uint16, fixed []byte) *request {
	r := &request{b: make([]byte, unix.SizeofNlMsghdr, 256)}
	order.PutUint16(r.b[4:6], typ)
	order.PutUint16(r.b[6:8], flags)
	r.b = append(r.b, fixed...)
	r.pad()
	return r
}

func (r *request) pad() {
	for len(r.b)%unix.RTA_ALIGNTO != 0 {
		r.b = append(r.b, 0)
	}
}

// attr appends one attribute.
func (r *request) attr(typ uint16, data []byte) {
	var h [unix.SizeofRtAttr]byte
	order.PutUint16(h[0:2], uint16(unix.SizeofRtAttr+len(data)))
	order.PutUint16(h[2:4], typ)
	r.b = append(r.b, h[:]...)
	r.b = append(r.b, data...)
	r.pad()
}

func (r *request) str(typ uint16, s string) { r.attr(typ, append([]byte(s), 0)) }

func (r *request) u32(typ uint16, v uint32) {
	var b [4]byte
	order.PutUint32(b[:], v)
	r.attr(typ, b[:])
}

// nest appends an attribute whose payload is whatever fn appends.
func (r *request) nest(typ uint16, fn func()) {
	start := len(r.b)
	r.attr(typ, nil)
	fn()
	order.PutUint16(r.b[start:start+2], uint16(len(r.b)-start))
}

// raw appends bytes (a fixed struct inside a nest) and pads.
func (r *request) raw(b []byte) {
	r.b = append(r.b, b...)
	r.pad()
}

// bytes finishes the request with its sequence number.
func (r *request) bytes(seq uint32) []byte {
	order.PutUint32(r.b[0:4], uint32(len(r.b)))
	order.PutUint32(r.b[8:12], seq)
	return r.b
}

// ifInfomsg encodes a struct ifinfomsg.
func ifInfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	order.PutUint32(b[4:8], uint32(int32(index)))
	order.PutUint32(b[8:12], flags)
	order.PutUint32(b[12:16], change)
	return b
}

// ifAddrmsg encodes a struct ifaddrmsg for an IPv4 address.
func ifAddrmsg(index, prefixLen int) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0] = unix.AF_INET
	b[1] = byte(prefixLen)
	order.PutUint32(b[4:8], uint32(index))
	return b
}
