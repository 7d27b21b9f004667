package net

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/internal/rawsock"
	"github.com/nscheck/nscheck/prop"
)

// kept holds what a held helper must keep open until it exits (a listener
// that went out of scope would be closed by its finalizer).
var (
	keptMu sync.Mutex
	kept   []io.Closer
)

func keep(c io.Closer) {
	keptMu.Lock()
	kept = append(kept, c)
	keptMu.Unlock()
}

// listenArgs asks a helper to listen, while held, on one stream socket:
// TCPPort of 127.0.0.1 (after bringing its lo up), or else the unix socket
// named Unix ("@name": an abstract one).
type listenArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	TCPPort   int     `json:"tcp_port,omitempty"`
	Unix      string  `json:"unix,omitempty"`
}

type listenFacts struct {
	Listen string `json:"listen"`
}

func init() {
	helper.Handle("net.listen", func(a listenArgs) (any, error) {
		var sa unix.Sockaddr = &unix.SockaddrUnix{Name: a.Unix}
		if a.Unix == "" {
			// A new namespace's lo is down: 127.0.0.1 does not exist yet.
			if err := loUp(a.Forbidden); err != nil {
				return nil, err
			}
			sa = loopback(a.TCPPort)
		}
		ln, err := rawsock.Listen(sa)
		if err == nil {
			keep(ln)
		}
		return listenFacts{Listen: errname.Of(err)}, nil
	})
}

// loopback is port of 127.0.0.1.
func loopback(port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
}

var _ = prop.Register(prop.Property{
	ID:       "net.ports-independent",
	Title:    "the same TCP port (127.0.0.1, ephemeral) is bound on the host and inside a new network namespace at once",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, prop.Loopback("connecting to the observer's own listener on 127.0.0.1")},
	Check:    portsIndependent,
})

func portsIndependent(t *prop.Trial) error {
	ln, forbidden, port, err := hostOnLoopback(t, listenTCP)
	if err != nil {
		return err
	}
	addr := rawsock.Format(loopback(port))
	var inside listenFacts
	p, err := startNet(t, "net.listen", listenArgs{Forbidden: forbidden, TCPPort: port}, &inside)
	if err != nil {
		return err
	}
	helperListens, err := tcpListening(p.PID(), port)
	if err != nil {
		return err
	}
	t.Inside("listen "+addr, inside.Listen)
	t.Host("listen "+addr, errname.OK)
	t.Host(fmt.Sprintf("/proc/%d/net/tcp listens on %d", p.PID(), port), helperListens)
	err = acceptOnce(ln, port)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// No answer at all is no evidence either way (a starved machine):
		// a port taken by the helper would refuse or be answered by it.
		return fmt.Errorf("connecting to the host's own listener on %s: no answer within %v: %w", addr, acceptWait, err)
	}
	accepted := errname.Of(err)
	t.Host("own listener accepts", accepted)
	t.Expect(inside.Listen == errname.OK, "inside, binding %s while the host holds it failed: %s", addr, inside.Listen)
	t.Expect(helperListens, "the helper's /proc/<pid>/net/tcp shows no listener on port %d", port)
	t.Expect(accepted == errname.OK, "the host's own listener on %s no longer accepts: %s", addr, accepted)
	return nil
}

// tcpListening says whether /proc/<pid>/net/tcp has a listener on port.
func tcpListening(pid, port int) (bool, error) {
	socks, err := procfile.ReadNetTCP(pid)
	if err != nil {
		return false, err
	}
	for _, s := range socks {
		if s.State == procfile.TCPListen && int(s.LocalPort) == port {
			return true, nil
		}
	}
	return false, nil
}

// acceptWait bounds a connection to 127.0.0.1 and its accept: immediate on
// any machine that is not starved.
const acceptWait = 10 * time.Second

// acceptOnce connects to port of 127.0.0.1 and accepts the connection on
// ln: the host's listener still owns the port.
func acceptOnce(ln *rawsock.Socket, port int) error {
	deadline := time.Now().Add(acceptWait)
	c, err := rawsock.Dial(loopback(port), deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := ln.Accept(deadline)
	if err != nil {
		return err
	}
	return s.Close()
}

var _ = prop.Register(prop.Property{
	ID:    "net.abstract-socket-isolated",
	Title: "an abstract unix socket bound inside a new network namespace cannot be connected from the host (ECONNREFUSED)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWNET,
	Check: abstractIsolated,
})

func abstractIsolated(t *prop.Trial) error {
	name := "@" + prop.UniqueName("nscheck-")
	var inside listenFacts
	p, err := startNet(t, "net.listen", listenArgs{Unix: name}, &inside)
	if err != nil {
		return err
	}
	helperLists, err := unixListed(p.PID(), name)
	if err != nil {
		return err
	}
	hostLists, err := unixListed(0, name)
	if err != nil {
		return err
	}
	c, dialErr := rawsock.Dial(&unix.SockaddrUnix{Name: name}, time.Now().Add(2*time.Second))
	if dialErr == nil {
		c.Close()
	}
	t.Inside("listen "+name, inside.Listen)
	t.Host(fmt.Sprintf("/proc/%d/net/unix lists %s", p.PID(), name), helperLists)
	t.Host("/proc/self/net/unix lists "+name, hostLists)
	t.Host("connect "+name, errname.Of(dialErr))
	t.Expect(inside.Listen == errname.OK, "inside, binding %s failed: %s", name, inside.Listen)
	t.Expect(helperLists, "the helper's /proc/<pid>/net/unix does not list %s", name)
	t.Expect(errors.Is(dialErr, unix.ECONNREFUSED), "the host connected to the abstract socket %s bound inside (%s, want ECONNREFUSED)", name, errname.Of(dialErr))
	t.Expect(!hostLists, "the host's /proc/self/net/unix lists %s", name)
	return nil
}

// unixListed says whether /proc/<pid>/net/unix (0: /proc/self) lists a
// socket at path.
func unixListed(pid int, path string) (bool, error) {
	paths, err := procfile.ReadNetUnix(pid)
	return slices.Contains(paths, path), err
}

// sysctlArgs asks a helper to write Value to the sysctl Key (a path below
// /proc/sys) of its network namespace.
type sysctlArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	Key       string  `json:"key"`
	Value     string  `json:"value"`
}

type sysctlFacts struct {
	Before string `json:"before"`
	After  string `json:"after"`
}

func init() {
	helper.Handle("net.sysctl", func(a sysctlArgs) (any, error) {
		if err := nsguard.Refuse("net", a.Forbidden); err != nil {
			return nil, err
		}
		var f sysctlFacts
		var err error
		if f.Before, err = readSysctl(a.Key); err != nil {
			return nil, err
		}
		if err := os.WriteFile("/proc/sys/"+a.Key, []byte(a.Value+"\n"), 0); err != nil {
			return nil, helper.Fail("write /proc/sys/"+a.Key, err)
		}
		if f.After, err = readSysctl(a.Key); err != nil {
			return nil, err
		}
		return f, nil
	})
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		return "", fmt.Errorf("read sysctl: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

var _ = prop.Register(prop.Property{
	ID:       "net.sysctl-per-ns",
	Title:    "changing net.ipv4.ip_forward inside a new network namespace leaves the host's unchanged",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, prop.ProcSysWritable("writing net.ipv4.ip_forward inside the helper")},
	Check:    sysctlPerNS,
})

func sysctlPerNS(t *prop.Trial) error {
	const key = "net/ipv4/ip_forward"
	before, err := readSysctl(key)
	if err != nil {
		return err
	}
	want := "1"
	if before == "1" {
		want = "0"
	}
	a := sysctlArgs{Key: key, Value: want}
	if a.Forbidden, err = t.Forbidden("net"); err != nil {
		return err
	}
	var inside sysctlFacts
	if _, err := startNet(t, "net.sysctl", a, &inside); err != nil {
		return err
	}
	during, err := readSysctl(key)
	if err != nil {
		return err
	}
	t.Inside(key+" before", inside.Before)
	t.Inside(key+" after writing "+want, inside.After)
	t.Host(key+" before", before)
	t.Host(key+" while held", during)
	t.Expect(inside.After == want, "inside, %s reads %s after writing %s", key, inside.After, want)
	t.Expect(during == before, "the host's %s changed from %s to %s", key, before, during)
	return nil
}
