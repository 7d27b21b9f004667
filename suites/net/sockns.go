package net

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// sockNSArgs drives the helper of net.socket-keeps-netns: bind Name in its
// namespace, then (when Unshare) move its thread to a new network
// namespace, bind Name again there, and setns back.
type sockNSArgs struct {
	Name    string `json:"name"`
	Unshare bool   `json:"unshare"`
}

type sockNSFacts struct {
	// The namespaces, by nsfs identity: the helper's own (First), the one
	// the thread moved to (Second), the thread's after setns back (Back),
	// and those SIOCGSKNS gives for each socket.
	First   string `json:"first ns"`
	Second  string `json:"second ns"`
	Back    string `json:"thread ns after setns back"`
	Socket1 string `json:"ns of the socket made first"`
	Socket2 string `json:"ns of the socket made second"`
	// Bind2 is the outcome of binding Name a second time.
	Bind2 string `json:"bind the name again"`
	// Dial is the outcome of connecting to Name after setns back, and
	// Accepted says which socket took the connection.
	Dial     string `json:"connect after setns back"`
	Accepted string `json:"accepted by"`
}

func init() {
	helper.Handle("net.socket-ns", func(a sockNSArgs) (any, error) {
		// Namespace changes are per thread: do them on a thread of its
		// own that dies with the goroutine (never unlocked, never reused).
		type result struct {
			f   sockNSFacts
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := socketNS(a)
			ch <- result{f, err}
		}()
		r := <-ch
		return r.f, r.err
	})
}

func threadNS() (nsfs.ID, error) { return nsfs.Stat("/proc/thread-self/ns/net") }

// socketNS runs on a locked thread that is never given back. Its sockets
// are plain fds (rawsock's go through the runtime's poller, which may
// touch them from another thread): unix stream connects and accepts of a
// pending connection do not block.
func socketNS(a sockNSArgs) (sockNSFacts, error) {
	var f sockNSFacts
	first, err := threadNS()
	if err != nil {
		return f, err
	}
	f.First = first.String()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return f, fmt.Errorf("open own netns: %w", err)
	}
	defer home.Close()
	sa := &unix.SockaddrUnix{Name: a.Name}
	ln1, err := unixListener(sa)
	if err != nil {
		return f, fmt.Errorf("listen in the first namespace: %w", err)
	}
	defer unix.Close(ln1)
	if a.Unshare {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return f, helper.Fail("unshare(CLONE_NEWNET)", err)
		}
	}
	second, err := threadNS()
	if err != nil {
		return f, err
	}
	f.Second = second.String()
	ln2, err := unixListener(sa)
	f.Bind2 = errname.Of(err)
	if err == nil {
		defer unix.Close(ln2)
	}
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		return f, helper.Fail("setns back to the first network namespace", err)
	}
	back, err := threadNS()
	if err != nil {
		return f, err
	}
	f.Back = back.String()
	if f.Socket1, err = socketNSOf(ln1); err != nil {
		return f, err
	}
	if ln2 >= 0 {
		if f.Socket2, err = socketNSOf(ln2); err != nil {
			return f, err
		}
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return f, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(c)
	err = unix.Connect(c, sa)
	f.Dial = errname.Of(err)
	if err != nil {
		return f, nil
	}
	for _, l := range []struct {
		fd   int
		name string
	}{{ln1, "the first"}, {ln2, "the second"}} {
		if l.fd < 0 {
			continue
		}
		if s, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC); err == nil {
			unix.Close(s)
			f.Accepted = l.name
			break
		}
	}
	return f, nil
}

// unixListener is a non-blocking unix stream socket listening at sa (-1
// and the error when it cannot bind).
func unixListener(sa *unix.SockaddrUnix) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", sa.Name, err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", sa.Name, err)
	}
	return fd, nil
}

// socketNSOf is the network namespace of a socket (SIOCGSKNS).
func socketNSOf(fd int) (string, error) {
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return "", fmt.Errorf("ioctl SIOCGSKNS: %w", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return "", fmt.Errorf("fstat the socket's netns: %w", err)
	}
	return nsfs.ID{Dev: st.Dev, Ino: st.Ino}.String(), nil
}

var _ = prop.Register(prop.Property{
	ID: "net.socket-keeps-netns",
	Title: "a socket stays in the network namespace it was created in after its thread setns()es elsewhere: SIOCGSKNS names that namespace, " +
		"the same abstract name binds in both, and a connection after setns back reaches the first one",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWNET,
	// SIOCGSKNS takes CAP_NET_ADMIN over the socket's namespace.
	Premises: []prop.Premise{netAdmin},
	Check:    socketKeepsNetns,
})

// socketKeepsNetns: the helper's thread makes a socket, moves to a new
// network namespace (the control: the unshare is withheld, it stays),
// makes another, and setns()es back.
func socketKeepsNetns(t *prop.Trial) error {
	a := sockNSArgs{Name: "@" + prop.UniqueName("nscheck-"), Unshare: t.Isolated}
	var in sockNSFacts
	if err := t.Run(helper.Spec{Action: "net.socket-ns", Args: a, Cloneflags: unix.CLONE_NEWNET}, &in); err != nil {
		return err
	}
	prefix := "thread "
	t.Inside(prefix+"first ns", in.First)
	t.Inside(prefix+"second ns", in.Second)
	t.Inside(prefix+"ns after setns back", in.Back)
	t.Inside("ns of the first socket (SIOCGSKNS)", in.Socket1)
	t.Inside("ns of the second socket (SIOCGSKNS)", in.Socket2)
	t.Inside("bind "+a.Name+" again", in.Bind2)
	t.Inside("connect after setns back", in.Dial)
	t.Inside("accepted by", in.Accepted)
	t.Expect(in.Back == in.First, "after setns back the thread is in %s, not its first namespace %s", in.Back, in.First)
	t.Expect(in.Second != in.First, "the thread's second network namespace is its first, %s", in.First)
	t.Expect(in.Bind2 == errname.OK, "binding %s in the second namespace gave %s: the name is taken there by the first socket", a.Name, in.Bind2)
	t.Expect(in.Socket1 == in.First, "the first socket is in %s, not in the namespace it was made in, %s", in.Socket1, in.First)
	t.Expect(in.Socket2 == in.Second && in.Socket2 != in.Back, "the second socket is in %q, not in the namespace it was made in, %s (the thread went back to %s)", in.Socket2, in.Second, in.Back)
	t.Expect(in.Dial == errname.OK && in.Accepted == "the first", "connecting to %s after setns back gave %s, accepted by %q, not by the first socket", a.Name, in.Dial, in.Accepted)
	return nil
}
