package netlink

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCaptureFixtures regenerates fixtures/netlink from the running kernel.
// It only runs on request and only in a network namespace of its own:
//
//	NSCHECK_CAPTURE=1 unshare -n go test -run TestCaptureFixtures ./internal/netlink
func TestCaptureFixtures(t *testing.T) {
	if os.Getenv("NSCHECK_CAPTURE") == "" {
		t.Skip("set NSCHECK_CAPTURE=1 and run under unshare -n to regenerate fixtures")
	}
	c, err := Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A fresh network namespace has nothing but lo.
	if links, err := c.Links(); err != nil || len(links) != 1 || links[0].Name != "lo" {
		t.Fatalf("refusing to create links outside a fresh network namespace (links %v, %v)", links, err)
	}
	if err := c.SetUp(1); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVeth(Veth{Name: "nsck-a", Peer: "nsck-b"}); err != nil {
		t.Fatal(err)
	}
	write := func(name string, r *request) {
		seq, err := c.send(r)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		buf := make([]byte, 64<<10)
		for done := false; !done; {
			n, _, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := ParseMessages(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, buf[:n]...)
			for _, m := range msgs {
				done = done || (m.Seq == seq && (m.Type == unix.NLMSG_DONE || m.Type == unix.NLMSG_ERROR))
			}
		}
		if err := os.WriteFile(filepath.Join(fixtureDir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("getlink-dump", getLinkRequest())
	bad := newRequest(unix.RTM_NEWLINK, createFlags, ifInfomsg(0, 0, 0))
	bad.str(unix.IFLA_IFNAME, "nsck-x")
	bad.nest(unix.IFLA_LINKINFO, func() { bad.str(unix.IFLA_INFO_KIND, "nosuchkind") })
	write("newlink-unknown-kind", bad)
}
