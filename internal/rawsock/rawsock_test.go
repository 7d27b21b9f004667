package rawsock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var loopback = [4]byte{127, 0, 0, 1}

func soon() time.Time { return time.Now().Add(5 * time.Second) }

func TestFormat(t *testing.T) {
	cases := []struct {
		sa   unix.Sockaddr
		want string
	}{
		{&unix.SockaddrInet4{Addr: loopback, Port: 8080}, "127.0.0.1:8080"},
		{&unix.SockaddrInet4{Addr: [4]byte{10, 254, 254, 2}}, "10.254.254.2:0"},
		{&unix.SockaddrInet4{}, "0.0.0.0:0"},
		{&unix.SockaddrUnix{Name: "/run/x.sock"}, "/run/x.sock"},
		{&unix.SockaddrUnix{Name: "@abstract"}, "@abstract"},
		{nil, "<nil>"},
		{&unix.SockaddrInet6{}, "*unix.SockaddrInet6"},
	}
	for _, c := range cases {
		if got := Format(c.sa); got != c.want {
			t.Errorf("Format(%#v) = %q, want %q", c.sa, got, c.want)
		}
	}
}

// listen opens a listener and closes it with the test.
func listen(t *testing.T, sa unix.Sockaddr) *Socket {
	t.Helper()
	ln, err := Listen(sa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// pair connects to ln at sa and accepts: the two ends of one connection.
func pair(t *testing.T, ln *Socket, sa unix.Sockaddr) (client, server *Socket) {
	t.Helper()
	c, err := Dial(sa, soon())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept(soon())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

// roundTrip sends msg from one end and reads it at the other.
func roundTrip(t *testing.T, from, to *Socket, msg string) {
	t.Helper()
	if err := from.Write([]byte(msg), soon()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(reader{to}, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

type reader struct{ s *Socket }

func (r reader) Read(b []byte) (int, error) { return r.s.Read(b, soon()) }

func TestTCPLoopback(t *testing.T) {
	ln := listen(t, &unix.SockaddrInet4{Addr: loopback})
	port, err := ln.Port()
	if err != nil || port == 0 {
		t.Fatalf("port %d, %v", port, err)
	}
	c, s := pair(t, ln, &unix.SockaddrInet4{Addr: loopback, Port: port})
	roundTrip(t, c, s, "ping")
	roundTrip(t, s, c, "pong")
	c.Close()
	if n, err := s.Read(make([]byte, 1), soon()); n != 0 || err != io.EOF {
		t.Errorf("read after the peer closed: %d, %v; want io.EOF", n, err)
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := Listen(&unix.SockaddrInet4{Addr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	port, err := ln.Port()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, err = Dial(&unix.SockaddrInet4{Addr: loopback, Port: port}, soon())
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial a closed port: %v, want ECONNREFUSED", err)
	}
}

func TestUnixPathRemovedOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sock")
	ln, err := Listen(&unix.SockaddrUnix{Name: path})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stat %s: %v, %v", path, fi, err)
	}
	c, s := pair(t, ln, &unix.SockaddrUnix{Name: path})
	roundTrip(t, c, s, "r")
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket file outlived its listener: %v", err)
	}
	if _, err := Listen(&unix.SockaddrUnix{Name: path}); err != nil {
		t.Errorf("listen again at %s: %v", path, err)
	}
}

func TestAbstract(t *testing.T) {
	name := fmt.Sprintf("@rawsock-test-%d", os.Getpid())
	sa := &unix.SockaddrUnix{Name: name}
	ln := listen(t, sa)
	if !listedUnix(t, name) {
		t.Errorf("/proc/self/net/unix does not list %s", name)
	}
	c, s := pair(t, ln, sa)
	roundTrip(t, c, s, "g")
	ln.Close()
	if _, err := Dial(sa, soon()); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial a closed abstract socket: %v, want ECONNREFUSED", err)
	}
}

// listedUnix says whether /proc/self/net/unix lists a socket at name (its
// last column).
func listedUnix(t *testing.T, name string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasSuffix(strings.TrimSpace(line), " "+name) {
			return true
		}
	}
	return false
}

func TestDeadlines(t *testing.T) {
	ln := listen(t, &unix.SockaddrInet4{Addr: loopback})
	start := time.Now()
	if _, err := ln.Accept(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("accept without a client: %v, want a deadline error", err)
	}
	port, _ := ln.Port()
	c, _ := pair(t, ln, &unix.SockaddrInet4{Addr: loopback, Port: port})
	if _, err := c.Read(make([]byte, 1), time.Now().Add(50*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read without data: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two 50ms deadlines took %v", d)
	}
	if _, err := c.Read(make([]byte, 1), time.Time{}); !errors.Is(err, ErrNoDeadline) {
		t.Errorf("read without a deadline: %v, want ErrNoDeadline", err)
	}
}

func TestCloseEndsAWait(t *testing.T) {
	ln, err := Listen(&unix.SockaddrInet4{Addr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept(soon())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("accept on a closed listener succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Error("Close did not end Accept")
	}
}

func TestUDP(t *testing.T) {
	a, err := ListenPacket(&unix.SockaddrInet4{Addr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenPacket(&unix.SockaddrInet4{Addr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	aPort, _ := a.Port()
	bPort, err := b.Port()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendTo([]byte("nonce"), &unix.SockaddrInet4{Addr: loopback, Port: bPort}, soon()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := b.RecvFrom(buf, soon())
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "nonce" || Format(from) != fmt.Sprintf("127.0.0.1:%d", aPort) {
		t.Errorf("received %q from %s, want \"nonce\" from port %d", buf[:n], Format(from), aPort)
	}
	if _, _, err := b.RecvFrom(buf, time.Now().Add(20*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("recvfrom without a datagram: %v, want a deadline error", err)
	}
}

func TestUnsupportedAddress(t *testing.T) {
	if _, err := Listen(&unix.SockaddrInet6{}); err == nil {
		t.Error("an IPv6 address was accepted")
	}
}
