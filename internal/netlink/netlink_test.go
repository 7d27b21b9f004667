package netlink

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

var fixtureDir = filepath.Join("..", "..", "fixtures", "netlink")

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A real RTM_GETLINK dump of a namespace with lo (up) and a veth pair.
func TestParseLinkDump(t *testing.T) {
	msgs, err := ParseMessages(fixture(t, "getlink-dump"))
	if err != nil {
		t.Fatal(err)
	}
	var links []Link
	done := false
	for _, m := range msgs {
		switch m.Type {
		case unix.RTM_NEWLINK:
			l, err := ParseLink(m)
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, l)
		case unix.NLMSG_DONE:
			done = true
		}
	}
	if !done {
		t.Error("dump has no NLMSG_DONE")
	}
	want := map[string]string{"lo": "", "nsck-a": "veth", "nsck-b": "veth"}
	if len(links) != len(want) {
		t.Fatalf("links = %v, want %v", links, want)
	}
	for _, l := range links {
		kind, ok := want[l.Name]
		if !ok || l.Kind != kind {
			t.Errorf("unexpected link %+v", l)
		}
		if l.Name == "lo" && (l.Index != 1 || !l.Up() || l.Flags&unix.IFF_LOOPBACK == 0) {
			t.Errorf("lo = %+v, want index 1, up, loopback", l)
		}
		if l.Name != "lo" && (l.Up() || l.OperUp() || l.OperState != OperDown) {
			t.Errorf("%s is up (flags %#x, operstate %d), the capture never brought it up", l.Name, l.Flags, l.OperState)
		}
	}
}

// The kernel's refusal of an unknown link kind, with its extended ack.
func TestParseErrorWithExtAck(t *testing.T) {
	msgs, err := ParseMessages(fixture(t, "newlink-unknown-kind"))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("msgs = %v, err = %v", msgs, err)
	}
	err = ParseError(msgs[0])
	var ke *KernelError
	if !errors.Is(err, unix.EOPNOTSUPP) || !errors.As(err, &ke) || ke.Msg == "" {
		t.Fatalf("err = %#v, want EOPNOTSUPP with the kernel's text", err)
	}
}

func TestParseErrorAck(t *testing.T) {
	m := Message{Type: unix.NLMSG_ERROR, Data: make([]byte, 4+unix.SizeofNlMsghdr)}
	if err := ParseError(m); err != nil {
		t.Errorf("ACK parsed as %v", err)
	}
	code := -int32(unix.EEXIST)
	order.PutUint32(m.Data, uint32(code))
	if err := ParseError(m); !errors.Is(err, unix.EEXIST) {
		t.Errorf("err = %v, want EEXIST", err)
	}
}

// The veth request, byte for byte as linux/rtnetlink.h lays it out.
func TestVethRequestEncoding(t *testing.T) {
	ns, err := os.Open(os.DevNull) // any open file stands in for the nsfs file
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	got := vethRequest(Veth{Name: "ab", Peer: "cd", PeerNS: ns, PeerIndex: 9}).bytes(42)
	var want bytes.Buffer
	u16 := func(v uint16) { want.Write(order.AppendUint16(nil, v)) }
	u32 := func(v uint32) { want.Write(order.AppendUint32(nil, v)) }
	ifi := func() { want.Write(make([]byte, unix.SizeofIfInfomsg)) }
	// nlmsghdr
	u32(16 + 16 + 8 + 56)
	u16(unix.RTM_NEWLINK)
	u16(createFlags)
	u32(42)
	u32(0)
	ifi()
	u16(7) // IFLA_IFNAME "ab\0" + 1 pad
	u16(unix.IFLA_IFNAME)
	want.Write([]byte{'a', 'b', 0, 0})
	u16(4 + 12 + 40) // IFLA_LINKINFO: header, kind, data
	u16(unix.IFLA_LINKINFO)
	u16(9) // IFLA_INFO_KIND "veth\0" + 3 pad
	u16(unix.IFLA_INFO_KIND)
	want.Write([]byte{'v', 'e', 't', 'h', 0, 0, 0, 0})
	u16(4 + 36) // IFLA_INFO_DATA
	u16(unix.IFLA_INFO_DATA)
	u16(4 + 16 + 8 + 8) // VETH_INFO_PEER: header, ifinfomsg, name, fd
	u16(vethInfoPeer)
	want.Write([]byte{unix.AF_UNSPEC, 0, 0, 0})
	u32(9) // ifi_index: the requested peer ifindex
	u32(0)
	u32(0)
	u16(7)
	u16(unix.IFLA_IFNAME)
	want.Write([]byte{'c', 'd', 0, 0})
	u16(8)
	u16(unix.IFLA_NET_NS_FD)
	u32(uint32(ns.Fd()))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("veth request\n got %x\nwant %x", got, want.Bytes())
	}
	// And it decodes back: the nests are well formed.
	msgs, err := ParseMessages(got)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("re-parse: %v %v", msgs, err)
	}
	attrs, err := ParseAttrs(msgs[0].Data[unix.SizeofIfInfomsg:])
	if err != nil || len(attrs) != 2 || attrs[1].Type != unix.IFLA_LINKINFO {
		t.Fatalf("attrs = %v, err = %v", attrs, err)
	}
}

func TestVethRequestSameNamespaceHasNoNSFD(t *testing.T) {
	if bytes.Contains(vethRequest(Veth{Name: "ab", Peer: "cd"}).bytes(1), order.AppendUint16(order.AppendUint16(nil, 8), unix.IFLA_NET_NS_FD)) {
		t.Error("a peer in the same namespace must not carry IFLA_NET_NS_FD")
	}
}

func TestSetUpAndAddrEncoding(t *testing.T) {
	up := setUpRequest(3).bytes(1)
	if len(up) != 32 || order.Uint32(up[16+4:]) != 3 || order.Uint32(up[16+8:]) != unix.IFF_UP || order.Uint32(up[16+12:]) != unix.IFF_UP {
		t.Errorf("set-up request = %x", up)
	}
	p := Prefix{Addr: [4]byte{10, 254, 0, 1}, Bits: 30}
	if p.String() != "10.254.0.1/30" {
		t.Errorf("prefix renders as %s", p)
	}
	r, err := addAddrRequest(5, p)
	if err != nil {
		t.Fatal(err)
	}
	b := r.bytes(1)
	want := []byte{unix.AF_INET, 30, 0, 0}
	want = order.AppendUint32(want, 5)
	want = append(want, 8, 0, unix.IFA_LOCAL, 0, 10, 254, 0, 1, 8, 0, unix.IFA_ADDRESS, 0, 10, 254, 0, 1)
	if !bytes.Equal(b[16:], want) || order.Uint16(b[4:]) != unix.RTM_NEWADDR {
		t.Errorf("addr request = %x, payload want %x", b, want)
	}
	for _, bits := range []int{-1, 33} {
		if _, err := addAddrRequest(5, Prefix{Addr: p.Addr, Bits: bits}); err == nil {
			t.Errorf("prefix length %d was accepted", bits)
		}
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	cases := map[string][]byte{
		"short header":      {1, 2, 3},
		"length too small":  append(order.AppendUint32(nil, 4), make([]byte, 12)...),
		"length too large":  append(order.AppendUint32(nil, 64), make([]byte, 12)...),
		"attr length large": {9, 0, 1, 0},
	}
	for name, b := range cases {
		if name == "attr length large" {
			if _, err := ParseAttrs(b); err == nil {
				t.Errorf("%s: no error", name)
			}
			continue
		}
		if _, err := ParseMessages(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseLink(Message{Type: unix.RTM_NEWLINK, Data: make([]byte, 8)}); err == nil {
		t.Error("short ifinfomsg accepted")
	}
}

// FuzzParse feeds arbitrary bytes to the decoder: it may reject them, never
// panic, and every link it accepts has a name.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f, "getlink-dump"))
	f.Add(fixture(f, "newlink-unknown-kind"))
	f.Add(vethRequest(Veth{Name: "a", Peer: "b", Index: 3}).bytes(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := ParseMessages(b)
		for _, m := range msgs {
			switch m.Type {
			case unix.RTM_NEWLINK:
				if l, err := ParseLink(m); err == nil && l.Name == "" {
					t.Errorf("link without a name accepted: %+v", l)
				}
			case unix.NLMSG_ERROR:
				_ = ParseError(m)
			}
			_, _ = ParseAttrs(m.Data)
		}
	})
}
