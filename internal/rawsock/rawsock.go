// Package rawsock is the few socket operations nscheck's helpers need (a
// TCP or unix listener, a stream connection, a UDP socket), made directly
// with x/sys/unix instead of the standard net package.
//
// Why: every helper process nscheck spawns is a fresh exec of a binary that
// links the helpers' code, and pays the initialisers of every package in it
// at start-up. net and net/netip cost tens of microseconds and their page
// faults on each exec, for a handful of sockets that a few properties open.
// So nothing the helper binary links may import net; host-side code that
// helpers never run (internal/hostsnap, internal/vm) may.
//
// How: a socket is opened non-blocking and close-on-exec and wrapped in an
// *os.File, so its waits go through the runtime's poller as net's do (no
// OS thread parked in poll(2), and a deadline ends the wait). Every
// operation that can block takes a deadline, and a zero deadline is an
// error rather than "wait forever": nothing here can hang a helper or the
// host. Addresses are x/sys/unix's: *unix.SockaddrInet4 and
// *unix.SockaddrUnix, whose Name is a path or, starting with "@", an
// abstract name (as for net).
package rawsock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoDeadline is returned by an operation that could block but was given
// no deadline.
var ErrNoDeadline = errors.New("rawsock: a blocking operation needs a deadline")

// Socket is an open socket. Its methods may be called from several
// goroutines, one reader and one writer at a time.
type Socket struct {
	f  *os.File
	rc syscall.RawConn
	// name is the address the socket was bound or connected to, for errors.
	name string
	// file is the socket file Close removes: the path a listener bound.
	file string
}

// Format renders an address as net does: "127.0.0.1:80", a unix socket's
// path, or "@name" for an abstract one.
func Format(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
	case *unix.SockaddrUnix:
		return a.Name
	case nil:
		return "<nil>"
	}
	return fmt.Sprintf("%T", sa)
}

// Listen opens a stream socket listening at sa: TCP on an IPv4 address
// (port 0: the kernel picks one, see [Socket.Port]) or a unix socket. A
// unix socket bound at a path is removed by Close.
func Listen(sa unix.Sockaddr) (*Socket, error) {
	fd, err := open(sa, unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	if _, inet := sa.(*unix.SockaddrInet4); inet {
		// As net.Listen: a port whose last connection is in TIME_WAIT can
		// be listened on again.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("setsockopt SO_REUSEADDR %s: %w", Format(sa), err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", Format(sa), err)
	}
	s := wrap(fd, Format(sa))
	s.file = socketFile(sa)
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		s.Close()
		return nil, fmt.Errorf("listen %s: %w", s.name, err)
	}
	return s, nil
}

// ListenPacket opens a UDP socket bound at sa, an IPv4 address (port 0:
// the kernel picks one).
func ListenPacket(sa *unix.SockaddrInet4) (*Socket, error) {
	fd, err := open(sa, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", Format(sa), err)
	}
	return wrap(fd, Format(sa)), nil
}

// Dial connects a stream socket to sa, at most until deadline.
func Dial(sa unix.Sockaddr, deadline time.Time) (*Socket, error) {
	fd, err := open(sa, unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	s := wrap(fd, Format(sa))
	if err := s.connect(sa, deadline); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect %s: %w", s.name, err)
	}
	return s, nil
}

// open creates a non-blocking, close-on-exec socket of typ for sa's family.
func open(sa unix.Sockaddr, typ int) (int, error) {
	var family int
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrUnix:
		family = unix.AF_UNIX
	default:
		return -1, fmt.Errorf("rawsock: unsupported address %s", Format(sa))
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket for %s: %w", Format(sa), err)
	}
	return fd, nil
}

// wrap hands a non-blocking socket to the runtime's poller.
func wrap(fd int, name string) *Socket {
	f := os.NewFile(uintptr(fd), name)
	// SyscallConn fails only for a nil or closed file.
	rc, _ := f.SyscallConn()
	return &Socket{f: f, rc: rc, name: name}
}

// socketFile is the file a bind to sa creates: the path of a unix socket
// that is neither abstract nor unnamed.
func socketFile(sa unix.Sockaddr) string {
	if a, ok := sa.(*unix.SockaddrUnix); ok && a.Name != "" && a.Name[0] != '@' {
		return a.Name
	}
	return ""
}

// connect starts a non-blocking connect and waits until it is done.
func (s *Socket) connect(sa unix.Sockaddr, deadline time.Time) error {
	var err error
	if cerr := s.rc.Control(func(fd uintptr) { err = unix.Connect(int(fd), sa) }); cerr != nil {
		return cerr
	}
	// A unix socket connects (or fails) at once; TCP goes on in the
	// background, also after EINTR.
	if err != unix.EINPROGRESS && err != unix.EINTR {
		return err
	}
	return s.await(true, deadline, connected)
}

// connected says how a connect in progress on fd ended: EAGAIN while it
// has not.
func connected(fd int) error {
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	// SO_ERROR is 0 both when connected and while still connecting.
	if _, err := unix.Getpeername(fd); err == unix.ENOTCONN {
		return unix.EAGAIN
	}
	return nil
}

// await runs op on the socket until it no longer says EAGAIN, waiting for
// the socket to become readable (or writable), at most until deadline.
func (s *Socket) await(write bool, deadline time.Time, op func(fd int) error) error {
	if deadline.IsZero() {
		return ErrNoDeadline
	}
	setDeadline, wait := s.f.SetReadDeadline, s.rc.Read
	if write {
		setDeadline, wait = s.f.SetWriteDeadline, s.rc.Write
	}
	if err := setDeadline(deadline); err != nil {
		return err
	}
	var opErr error
	err := wait(func(fd uintptr) bool {
		for {
			if opErr = op(int(fd)); opErr != unix.EINTR {
				return opErr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return err // os.ErrDeadlineExceeded, or the socket was closed
	}
	return opErr
}

// Accept waits for a connection, at most until deadline.
func (s *Socket) Accept(deadline time.Time) (*Socket, error) {
	var nfd int
	err := s.await(false, deadline, func(fd int) (err error) {
		nfd, _, err = unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("accept %s: %w", s.name, err)
	}
	return wrap(nfd, s.name), nil
}

// Read reads from a stream socket what has arrived, waiting for something
// at most until deadline. It returns io.EOF once the peer has closed.
func (s *Socket) Read(b []byte, deadline time.Time) (int, error) {
	var n int
	err := s.await(false, deadline, func(fd int) (err error) {
		n, err = unix.Read(fd, b)
		return err
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("read %s: %w", s.name, err)
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b to a stream socket, at most until deadline.
func (s *Socket) Write(b []byte, deadline time.Time) error {
	for len(b) > 0 {
		var n int
		err := s.await(true, deadline, func(fd int) (err error) {
			n, err = unix.Write(fd, b)
			return err
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", s.name, err)
		}
		b = b[n:]
	}
	return nil
}

// RecvFrom receives one datagram into b, waiting for it at most until
// deadline, and says where it came from.
func (s *Socket) RecvFrom(b []byte, deadline time.Time) (int, unix.Sockaddr, error) {
	var (
		n    int
		from unix.Sockaddr
	)
	err := s.await(false, deadline, func(fd int) (err error) {
		n, from, err = unix.Recvfrom(fd, b, 0)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("recvfrom %s: %w", s.name, err)
	}
	return n, from, nil
}

// SendTo sends b as one datagram to to, at most until deadline.
func (s *Socket) SendTo(b []byte, to unix.Sockaddr, deadline time.Time) error {
	err := s.await(true, deadline, func(fd int) error { return unix.Sendto(fd, b, 0, to) })
	if err != nil {
		return fmt.Errorf("sendto %s: %w", Format(to), err)
	}
	return nil
}

// Port is the port an IPv4 socket is bound to (the one the kernel picked
// for port 0).
func (s *Socket) Port() (int, error) {
	var (
		sa  unix.Sockaddr
		err error
	)
	if cerr := s.rc.Control(func(fd uintptr) { sa, err = unix.Getsockname(int(fd)) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("getsockname %s: %w", s.name, err)
	}
	a, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return 0, fmt.Errorf("getsockname %s: %s has no port", s.name, Format(sa))
	}
	return a.Port, nil
}

// Close closes the socket, and removes the socket file of a listener bound
// at a path, as net's unix listener does.
func (s *Socket) Close() error {
	err := s.f.Close()
	if err == nil && s.file != "" {
		_ = os.Remove(s.file)
	}
	return err
}
