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
package rendezvous

import (
	"fmt"
	"net"
	"time"
)

const (
	ready = 'r'
	goOn  = 'g'
)

// Gate is the host's side: a listening socket at a path.
type Gate struct {
	ln   *net.UnixListener
	path string
}

// Listen binds the gate at path (a new socket file).
func Listen(path string) (*Gate, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("rendezvous listen %s: %w", path, err)
	}
	return &Gate{ln: ln, path: path}, nil
}

// Path is where helpers Arrive.
func (g *Gate) Path() string { return g.path }

// Close stops listening and removes the socket file.
func (g *Gate) Close() error { return g.ln.Close() }

// Visitor is a helper that has arrived and waits for Proceed.
type Visitor struct{ c *net.UnixConn }

// Wait blocks until a helper has arrived, at most until deadline.
func (g *Gate) Wait(deadline time.Time) (*Visitor, error) {
	if err := g.ln.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	c, err := g.ln.AcceptUnix()
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
	if _, err := v.c.Write([]byte{goOn}); err != nil {
		return fmt.Errorf("rendezvous: tell the helper to proceed: %w", err)
	}
	return nil
}

// Arrive is the helper's side: announce readiness at path and block until
// the host says Proceed, at most until deadline.
func Arrive(path string, deadline time.Time) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("rendezvous dial %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{ready}); err != nil {
		return fmt.Errorf("rendezvous: announce: %w", err)
	}
	return expect(c, goOn, deadline)
}

func expect(c *net.UnixConn, want byte, deadline time.Time) error {
	if err := c.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return fmt.Errorf("rendezvous: waiting for %q: %w", want, err)
	}
	if b[0] != want {
		return fmt.Errorf("rendezvous: got %q, want %q", b[0], want)
	}
	return nil
}
