package net

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/rawsock"
	"github.com/nscheck/nscheck/prop"
)

// The other direction of every path a socket or a link can leak by: what
// the host holds must be out of reach from inside a new network namespace
// (an abstract unix socket, a TCP listener), what a helper holds inside out
// of reach from the host, and the host's links absent from every interface
// that lists links (the netlink dump, /proc/<pid>/net/dev, sysfs). The setup
// of each probe uses none of the interfaces it tests.
//
// Unix sockets bound at a path are not scoped by the network namespace but
// by the file system (a path socket is reachable from any network namespace
// that sees the path): that is a mount namespace question, not checked here.

// dialArgs asks a helper to connect, once, to an abstract unix socket
// (Unix) or to TCPPort of 127.0.0.1 after bringing its lo up.
type dialArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	Unix      string  `json:"unix,omitempty"`
	TCPPort   int     `json:"tcp_port,omitempty"`
}

type dialFacts struct {
	Dial string `json:"dial"`
	// Listed says the helper's own /proc/self/net/unix (or net/tcp) lists
	// the socket it dialled.
	Listed bool `json:"listed"`
}

// portArgs asks a helper to listen on 127.0.0.1:Port (0: any) while held,
// and to say which port it got.
type portArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	Port      int     `json:"port"`
}

type portFacts struct {
	Listen string `json:"listen"`
	Port   int    `json:"port,omitempty"`
}

func init() {
	helper.Handle("net.dial", dialOnce)
	helper.Handle("net.listen-port", func(a portArgs) (any, error) {
		if err := loUp(a.Forbidden); err != nil {
			return nil, err
		}
		ln, err := rawsock.Listen(loopback(a.Port))
		if err != nil {
			return portFacts{Listen: errname.Of(err)}, nil
		}
		keep(ln)
		port, err := ln.Port()
		return portFacts{Listen: errname.OK, Port: port}, err
	})
}

func dialOnce(a dialArgs) (any, error) {
	var f dialFacts
	var sa unix.Sockaddr = &unix.SockaddrUnix{Name: a.Unix}
	if a.Unix == "" {
		if err := loUp(a.Forbidden); err != nil {
			return nil, err
		}
		sa = loopback(a.TCPPort)
		listening, err := tcpListening(0, a.TCPPort)
		if err != nil {
			return nil, err
		}
		f.Listed = listening
	} else {
		listed, err := unixListed(0, a.Unix)
		if err != nil {
			return nil, err
		}
		f.Listed = listed
	}
	c, err := rawsock.Dial(sa, time.Now().Add(2*time.Second))
	if err == nil {
		c.Close()
	}
	f.Dial = errname.Of(err)
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID: "net.abstract-socket-host-unreachable",
	Title: "an abstract unix socket bound on the host cannot be connected from inside a new network namespace (ECONNREFUSED), " +
		"nor is it listed in the helper's /proc/self/net/unix",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWNET,
	Check: abstractHostUnreachable,
})

// abstractHostUnreachable is net.abstract-socket-isolated the other way
// round: the observer binds, the helper dials.
func abstractHostUnreachable(t *prop.Trial) error {
	name := "@" + prop.UniqueName("nscheck-")
	ln, err := rawsock.Listen(&unix.SockaddrUnix{Name: name})
	if err != nil {
		return fmt.Errorf("listen on the host: %w", err)
	}
	defer ln.Close()
	var inside dialFacts
	if err := t.Run(helper.Spec{Action: "net.dial", Args: dialArgs{Unix: name}, Cloneflags: unix.CLONE_NEWNET}, &inside); err != nil {
		return err
	}
	hostLists, err := unixListed(0, name)
	if err != nil {
		return err
	}
	t.Host("listen "+name, errname.OK)
	t.Host("/proc/self/net/unix lists "+name, hostLists)
	t.Inside("connect "+name, inside.Dial)
	t.Inside("/proc/self/net/unix lists "+name, inside.Listed)
	t.Expect(hostLists, "the host's own /proc/self/net/unix does not list the socket it bound, %s", name)
	t.Expect(errname.Is(inside.Dial, unix.ECONNREFUSED), "inside, connecting to the host's abstract socket %s gave %s, want ECONNREFUSED", name, inside.Dial)
	t.Expect(!inside.Listed, "inside, /proc/self/net/unix lists the host's abstract socket %s", name)
	return nil
}

var _ = prop.Register(prop.Property{
	ID: "net.port-host-unreachable",
	Title: "a TCP listener of the host on 127.0.0.1 cannot be connected from inside a new network namespace (ECONNREFUSED on its own lo), " +
		"nor is it in the helper's /proc/self/net/tcp",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, prop.Loopback("the observer's own listener on 127.0.0.1")},
	Check:    portHostUnreachable,
})

func portHostUnreachable(t *prop.Trial) error {
	_, forbidden, port, err := hostOnLoopback(t, listenTCP)
	if err != nil {
		return err
	}
	addr := rawsock.Format(loopback(port))
	var inside dialFacts
	if err := t.Run(helper.Spec{Action: "net.dial", Args: dialArgs{Forbidden: forbidden, TCPPort: port}, Cloneflags: unix.CLONE_NEWNET}, &inside); err != nil {
		return err
	}
	t.Host("listen "+addr, errname.OK)
	t.Inside("connect "+addr, inside.Dial)
	t.Inside("/proc/self/net/tcp listens on "+itoa(port), inside.Listed)
	t.Expect(errname.Is(inside.Dial, unix.ECONNREFUSED), "inside, connecting to the host's listener %s gave %s, want ECONNREFUSED", addr, inside.Dial)
	t.Expect(!inside.Listed, "inside, /proc/self/net/tcp shows the host's listener on port %d", port)
	return nil
}

var _ = prop.Register(prop.Property{
	ID: "net.port-inside-unreachable",
	Title: "a TCP listener on 127.0.0.1 inside a new network namespace cannot be connected from the host (ECONNREFUSED), " +
		"and the host's /proc/self/net/tcp does not list it",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, prop.Loopback("connecting to 127.0.0.1 from the observer")},
	Check:    portInsideUnreachable,
})

// portInsideUnreachable: the helper listens on a port that, in the real
// run, the host has bound without listening (so that nothing of the host's
// can answer on it, and a refusal means the helper's listener is out of
// reach); in a control's fresh sandbox any port will do.
func portInsideUnreachable(t *prop.Trial) error {
	forbidden, err := t.Forbidden("net")
	if err != nil {
		return err
	}
	if err := sandboxLoUp(t); err != nil {
		return err
	}
	a := portArgs{Forbidden: forbidden}
	if !t.Sandboxed {
		fd, port, err := reservePort()
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		a.Port = port
		t.Host(fmt.Sprintf("bound, not listening, 127.0.0.1:%d", port), errname.OK)
	}
	var inside portFacts
	p, err := startNet(t, "net.listen-port", a, &inside)
	if err != nil {
		return err
	}
	t.Inside("listen", inside.Listen)
	if !t.Expect(inside.Listen == errname.OK, "inside, listening on 127.0.0.1:%d failed: %s", a.Port, inside.Listen) {
		return nil
	}
	addr := rawsock.Format(loopback(inside.Port))
	helperListens, err := tcpListening(p.PID(), inside.Port)
	if err != nil {
		return err
	}
	hostListens, err := tcpListening(0, inside.Port)
	if err != nil {
		return err
	}
	c, dialErr := rawsock.Dial(loopback(inside.Port), time.Now().Add(2*time.Second))
	if dialErr == nil {
		c.Close()
	}
	t.Inside("listening on", addr)
	t.Host(fmt.Sprintf("/proc/%d/net/tcp listens on %d", p.PID(), inside.Port), helperListens)
	t.Host(fmt.Sprintf("/proc/self/net/tcp listens on %d", inside.Port), hostListens)
	t.Host("connect "+addr, errname.Of(dialErr))
	t.Expect(helperListens, "the helper's /proc/<pid>/net/tcp shows no listener on port %d", inside.Port)
	t.Expect(!hostListens, "the host's /proc/self/net/tcp lists the listener made inside on port %d", inside.Port)
	t.Expect(errors.Is(dialErr, unix.ECONNREFUSED), "the host connected to the listener made inside on %s (%s, want ECONNREFUSED)", addr, errname.Of(dialErr))
	return nil
}

// hostOnLoopback is the start of a check in which the host holds a port of
// 127.0.0.1: the Forbidden network namespace of the helpers, lo up in a
// control's sandbox, and the host's socket opened by open on a port the
// kernel picks (closed when the trial ends), with its port.
func hostOnLoopback(t *prop.Trial, open func(*unix.SockaddrInet4) (*rawsock.Socket, error)) (s *rawsock.Socket, forbidden nsfs.ID, port int, err error) {
	if forbidden, err = t.Forbidden("net"); err != nil {
		return
	}
	if err = sandboxLoUp(t); err != nil {
		return
	}
	if s, err = open(loopback(0)); err != nil {
		return nil, forbidden, 0, fmt.Errorf("open a socket on the host's 127.0.0.1: %w", err)
	}
	t.Defer(func() { _ = s.Close() })
	port, err = s.Port()
	return
}

// listenTCP is rawsock.Listen on an IPv4 address.
func listenTCP(sa *unix.SockaddrInet4) (*rawsock.Socket, error) { return rawsock.Listen(sa) }

// reservePort binds a TCP socket on 127.0.0.1 (port chosen by the kernel)
// without listening: while it is open no other socket of the host's can
// use the port, and a connection to it is refused.
func reservePort() (fd, port int, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, loopback(0)); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("getsockname: %w", err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}

// devArgs asks a helper in a new network namespace to list its links by
// the interfaces that list links, without creating any.
type devArgs struct {
	Forbidden nsfs.ID `json:"forbidden"`
	// Sysfs, when set, is a directory where the helper (in a mount
	// namespace of its own) mounts a fresh sysfs and lists class/net.
	Sysfs string `json:"sysfs,omitempty"`
	// ForbiddenMnt is the host's mount namespace (none in a control).
	ForbiddenMnt nsfs.ID `json:"forbidden_mnt"`
}

type devFacts struct {
	NS    string   `json:"ns"`
	Dev   []string `json:"/proc/self/net/dev"`
	Sysfs []string `json:"sysfs class/net,omitempty"`
	// Mount is the outcome of mounting sysfs (an errno name).
	Mount string `json:"mount sysfs,omitempty"`
}

func init() {
	helper.Handle("net.devices", listDevices)
}

func listDevices(a devArgs) (any, error) {
	id, err := nsfs.Of(0, "net")
	if err != nil {
		return nil, err
	}
	f := devFacts{NS: id.String()}
	if f.Dev, err = procNetDev(0); err != nil {
		return nil, err
	}
	if a.Sysfs == "" {
		return f, nil
	}
	// A sysfs shows the network devices of the namespace of whoever
	// mounts it: mount one here, in a mount namespace of its own.
	if err := nsguard.Refuse("mnt", a.ForbiddenMnt); err != nil {
		return nil, err
	}
	if err := nsguard.Refuse("net", a.Forbidden); err != nil {
		return nil, err
	}
	if err := ownmount.MakePrivate(); err != nil {
		return nil, err
	}
	err = unix.Mount("sysfs", a.Sysfs, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
	if f.Mount = errname.Of(err); err != nil {
		return f, nil
	}
	ents, err := os.ReadDir(filepath.Join(a.Sysfs, "class", "net"))
	if err != nil {
		return nil, fmt.Errorf("list the fresh sysfs: %w", err)
	}
	for _, e := range ents {
		// Devices are symlinks; bonding_masters and the like are files.
		if e.Type()&os.ModeSymlink != 0 {
			f.Sysfs = append(f.Sysfs, e.Name())
		}
	}
	slices.Sort(f.Sysfs)
	return f, nil
}

// hostDevices is the observer's own device list, read from
// /proc/self/net/dev (not the dump), after giving a control's sandbox an
// interface besides lo; and the devices of a fresh namespace, which are
// no one's leak.
func hostDevices(t *prop.Trial) ([]string, fresh, error) {
	if err := sandboxLinks(t); err != nil {
		return nil, fresh{}, err
	}
	devs, err := procNetDev(0)
	if err != nil {
		return nil, fresh{}, err
	}
	t.Host("/proc/self/net/dev", devs)
	f, err := freshNamespace(t)
	return devs, f, err
}

var _ = prop.Register(prop.Property{
	ID: "net.links-hidden-procnetdev",
	Title: "no host interface (lo and the kernel's per-namespace devices aside) is listed in /proc/<pid>/net/dev of a helper in a new network namespace, " +
		"read by the host and by the helper itself",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, vethPremise},
	Check:    linksHiddenProcNetDev,
})

// linksHiddenProcNetDev compares /proc/net/dev on both sides; the helper
// creates nothing, and which devices every namespace has comes from a fresh
// namespace's netlink dump (freshNamespace).
func linksHiddenProcNetDev(t *prop.Trial) error {
	host, own, err := hostDevices(t)
	if err != nil {
		return err
	}
	var inside devFacts
	p, err := startNet(t, "net.devices", devArgs{}, &inside)
	if err != nil {
		return err
	}
	seen, err := procNetDev(p.PID())
	if err != nil {
		return err
	}
	t.Inside("/proc/self/net/dev", inside.Dev)
	t.Host(fmt.Sprintf("/proc/%d/net/dev", p.PID()), seen)
	for _, h := range host {
		if own.ownDevName(h) {
			continue
		}
		t.Expect(!slices.Contains(seen, h), "the host reads its interface %s in the helper's /proc/<pid>/net/dev", h)
		t.Expect(!slices.Contains(inside.Dev, h), "inside, /proc/self/net/dev lists the host's interface %s", h)
	}
	return nil
}

var _ = prop.Register(prop.Property{
	ID: "net.links-hidden-sysfs",
	Title: "no host interface (lo and the kernel's per-namespace devices aside) is in /sys/class/net of a sysfs mounted " +
		"inside a new network namespace (in the helper's own mount namespace)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWNET,
	Premises: []prop.Premise{
		prop.Scratch, netAdmin, vethPremise,
		prop.Creates(unix.CLONE_NEWNET|unix.CLONE_NEWNS, "a helper that mounts its own sysfs"),
	},
	Check: linksHiddenSysfs,
})

func linksHiddenSysfs(t *prop.Trial) error {
	host, own, err := hostDevices(t)
	if err != nil {
		return err
	}
	dir, err := t.ScratchDir("nscheck-sysfs-")
	if err != nil {
		return err
	}
	a := devArgs{Sysfs: dir}
	if a.Forbidden, err = t.Forbidden("net"); err != nil {
		return err
	}
	if a.ForbiddenMnt, err = t.Forbidden("mnt"); err != nil {
		return err
	}
	var inside devFacts
	if err := t.Run(helper.Spec{Action: "net.devices", Args: a, Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS}, &inside); err != nil {
		return err
	}
	t.Inside("mount sysfs", inside.Mount)
	if errname.Is(inside.Mount, unix.EPERM) || errname.Is(inside.Mount, unix.EACCES) {
		return prop.Unmet("mounting a sysfs in the helper's namespaces failed with "+inside.Mount+": inside a user namespace the kernel refuses it while parts of /sys are over-mounted (masked paths, as container runtimes do), and an LSM may refuse it",
			"run nscheck where /sys is fully visible (on the host)")
	}
	if inside.Mount != errname.OK {
		return fmt.Errorf("mount sysfs inside: %s", inside.Mount)
	}
	t.Inside("sysfs class/net", inside.Sysfs)
	t.Expect(slices.Contains(inside.Sysfs, "lo"), "inside, the fresh sysfs has no lo: %v", inside.Sysfs)
	for _, h := range host {
		if own.ownDevName(h) {
			continue
		}
		t.Expect(!slices.Contains(inside.Sysfs, h), "inside, /sys/class/net of a fresh sysfs lists the host's interface %s", h)
	}
	return nil
}

func init() {
	helper.Handle("net.bind-udp", func(a portArgs) (any, error) {
		if err := loUp(a.Forbidden); err != nil {
			return nil, err
		}
		conn, err := rawsock.ListenPacket(loopback(a.Port))
		if err == nil {
			keep(conn)
		}
		return portFacts{Listen: errname.Of(err), Port: a.Port}, nil
	})
}

var _ = prop.Register(prop.Property{
	ID:       "net.udp-ports-independent",
	Title:    "the same UDP port (127.0.0.1, ephemeral) is bound on the host and inside a new network namespace at once",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNET,
	Premises: []prop.Premise{netAdmin, prop.Loopback("the observer's own UDP socket on 127.0.0.1")},
	Check:    udpPortsIndependent,
})

// udpPortsIndependent is net.ports-independent for UDP: the port tables of
// the two protocols are separate, and so are their namespaces' tables.
func udpPortsIndependent(t *prop.Trial) error {
	_, forbidden, port, err := hostOnLoopback(t, rawsock.ListenPacket)
	if err != nil {
		return err
	}
	addr := rawsock.Format(loopback(port))
	var inside portFacts
	if _, err := startNet(t, "net.bind-udp", portArgs{Forbidden: forbidden, Port: port}, &inside); err != nil {
		return err
	}
	t.Host("bind udp "+addr, errname.OK)
	t.Inside("bind udp "+addr, inside.Listen)
	t.Expect(inside.Listen == errname.OK, "inside, binding UDP %s while the host holds it failed: %s", addr, inside.Listen)
	return nil
}
