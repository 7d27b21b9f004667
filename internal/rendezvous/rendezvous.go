// Package rendezvous lets a helper and the process that started it take
// turns, when a property needs "the helper is ready, now the host acts, now
// the helper looks" (a mount made on the host after the namespace exists).
// The helper protocol answers once, so the turns go over a unix socket bound
// at a path both can reach (a tmpfs the helper inherited a copy of).
//
//	host                                     helper
//	Listen(path)
//	start the helper ───────────────────────▶ ... its own setup ...
//	Wait(deadline)  ◀──────── "r" ─────────── Arrive(path, deadline): connect, "r"
//	... act ...                               (blocked)
//	Proceed()  ─────────────── "g" ─────────▶ returns: look
//
// Every wait is bounded by a deadline, so a dead peer is an error, not a hang.
//
// The socket is internal/rawsock's, not net's: helpers link this package,
// and must not pay net's initialisers at every exec.
package rendezvous

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/rawsock"
)

const (
	ready = 'r'
	goOn  = 'g'
)

// proceedTimeout bounds Proceed's one-byte write: it fits in the socket
// buffer at once, the bound only keeps a broken socket from hanging.
const proceedTimeout = time.Second

// Gate is the host's side: a listening socket at a path.
type Gate struct {
	ln   *rawsock.Socket
	path string
}

// Listen binds the gate at path (a new socket file).
func Listen(path string) (*Gate, error) {
	ln, err := rawsock.Listen(&unix.SockaddrUnix{Name: path})
	if err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	return &Gate{ln: ln, path: path}, nil
}

// Path is where helpers Arrive.
func (g *Gate) Path() string { return g.path }

// Close stops listening and removes the socket file.
func (g *Gate) Close() error { return g.ln.Close() }

// Visitor is a helper that has arrived and waits for Proceed.
type Visitor struct{ c *rawsock.Socket }

// Wait blocks until a helper has arrived, at most until deadline.
func (g *Gate) Wait(deadline time.Time) (*Visitor, error) {
	c, err := g.ln.Accept(deadline)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: no helper arrived at %s: %w", g.path, err)
	}
	if err := expect(c, ready, deadline); err != nil {
		c.Close()
		return nil, err
	}
	return &Visitor{c: c}, nil
}

// Proceed lets the waiting helper go on.
func (v *Visitor) Proceed() error {
	defer v.c.Close()
	if err := v.c.Write([]byte{goOn}, time.Now().Add(proceedTimeout)); err != nil {
		return fmt.Errorf("rendezvous: tell the helper to proceed: %w", err)
	}
	return nil
}

// Arrive is the helper's side: announce readiness at path and block until
// the host says Proceed, at most until deadline.
func Arrive(path string, deadline time.Time) error {
	c, err := rawsock.Dial(&unix.SockaddrUnix{Name: path}, deadline)
	if err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	defer c.Close()
	if err := c.Write([]byte{ready}, deadline); err != nil {
		return fmt.Errorf("rendezvous: announce: %w", err)
	}
	return expect(c, goOn, deadline)
}

func expect(c *rawsock.Socket, want byte, deadline time.Time) error {
	var b [1]byte
	if _, err := c.Read(b[:], deadline); err != nil {
		return fmt.Errorf("rendezvous: waiting for %q: %w", want, err)
	}
	if b[0] != want {
		return fmt.Errorf("rendezvous: got %q, want %q", b[0], want)
	}
	return nil
}
