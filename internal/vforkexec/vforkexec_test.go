package vforkexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// run starts sh -c script with Start and returns its exit status and what
// it wrote to stdout and stderr.
func run(t *testing.T, flags uintptr, script string) (unix.WaitStatus, string) {
	t.Helper()
	ws, out, err := runScript(flags, script)
	if err != nil {
		t.Fatal(err)
	}
	return ws, out
}

func runScript(flags uintptr, script string) (unix.WaitStatus, string, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, "", err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, "", err
	}
	defer r.Close()
	pid, pidfd, err := Start(Attr{
		Path:       "/bin/sh",
		Argv:       []string{"sh", "-c", script},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Files:      []*os.File{null, w, w},
		Cloneflags: flags,
	})
	w.Close()
	if err != nil {
		return 0, "", err
	}
	defer unix.Close(pidfd)
	out, err := io.ReadAll(r)
	var ws unix.WaitStatus
	if _, werr := unix.Wait4(pid, &ws, 0, nil); werr != nil {
		return 0, "", werr
	}
	return ws, string(out), err
}

func needSupported(t *testing.T) {
	if !supported {
		t.Skipf("no vfork trampoline on %s: helpers use os/exec there", runtime.GOARCH)
	}
}

func field(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// The child is root in a user namespace of its own, mapped to the caller,
// setgroups denied, with every capability there (the maps were written
// before the exec), and starts with no handler, no blocked signal.
func TestStartMapsRoot(t *testing.T) {
	needSupported(t)
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	ws, out := run(t, unix.CLONE_NEWUSER|unix.CLONE_NEWUTS,
		"cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; readlink /proc/self/ns/user; cat /proc/self/status; hostname nscheck-vforkexec && hostname")
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("child: %v\n%s", ws, out)
	}
	lines := strings.Fields(out)
	want := []string{"0", strconv.Itoa(os.Geteuid()), "1", "0", strconv.Itoa(os.Getegid()), "1", "deny"}
	if len(lines) < len(want)+1 || strings.Join(lines[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("maps and setgroups: want %v, got\n%s", want, out)
	}
	if ns := lines[len(want)]; ns == self || !strings.HasPrefix(ns, "user:[") {
		t.Fatalf("child's user namespace %q, ours %q", ns, self)
	}
	for name, want := range map[string]string{"Uid": "0\t0\t0\t0", "SigBlk": "0000000000000000", "SigCgt": "0000000000000000"} {
		if got := field(out, name); got != want {
			t.Errorf("%s: want %s, got %s", name, want, got)
		}
	}
	// Root in its namespace keeps its capabilities across the exec only
	// if the maps were written before it (which set of them depends on
	// the kernel's CAP_LAST_CAP).
	if capEff := field(out, "CapEff"); capEff == "" || strings.Trim(capEff, "0") == "" {
		t.Errorf("CapEff %q: the child lost its capabilities at exec", capEff)
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "nscheck-vforkexec") {
		t.Errorf("sethostname in the child's UTS namespace failed:\n%s", out)
	}
}

// Without a user namespace nothing is mapped: the child is in the
// caller's user namespace, with the caller's ids, in its new namespaces.
func TestStartWithoutUserNamespace(t *testing.T) {
	needSupported(t)
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	flags := uintptr(0)
	if os.Geteuid() == 0 {
		flags = unix.CLONE_NEWPID | unix.CLONE_NEWIPC
	}
	ws, out := run(t, flags, "readlink /proc/self/ns/user; echo pid $$; id -u")
	if ws.ExitStatus() != 0 {
		t.Fatalf("child: %v\n%s", ws, out)
	}
	want := []string{self, "pid", "1", strconv.Itoa(os.Geteuid())}
	if flags == 0 {
		want = []string{self, "pid"}
	}
	if got := strings.Fields(out); len(got) != 4 || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("child said %q, want %q", got, want)
	}
}

// A child that cannot exec fails Start with the step and errno, and is
// reaped; a clone the kernel refuses wraps the kernel's errno.
func TestStartFailures(t *testing.T) {
	needSupported(t)
	_, _, err := Start(Attr{Path: "/nonexistent/nscheck", Argv: []string{"x"}, Cloneflags: unix.CLONE_NEWUSER})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "execve") {
		t.Errorf("exec of a missing file: want execve ENOENT, got %v", err)
	}
	// CLONE_FS with CLONE_NEWUSER is invalid.
	_, _, err = Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_FS})
	if !errors.Is(err, unix.EINVAL) || !strings.HasPrefix(err.Error(), "clone") {
		t.Errorf("clone with CLONE_FS: want clone EINVAL, got %v", err)
	}
	if _, _, err := Start(Attr{Path: "/bin/true", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWTIME}); err == nil {
		t.Error("Start with CLONE_NEWTIME succeeded")
	}
	if _, _, err := Start(Attr{Path: "/bin/true", Cloneflags: unix.CLONE_NEWUSER, Files: make([]*os.File, maxFiles+1)}); err == nil {
		t.Error("Start with too many files succeeded")
	}
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Fatalf("a child is left: wait4 gave %v", err)
	}
}

// The calling thread's signal mask is what it was before Start.
func TestStartRestoresMask(t *testing.T) {
	needSupported(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadField(t, "SigBlk")
	run(t, unix.CLONE_NEWUSER, "true")
	if after := threadField(t, "SigBlk"); after != before {
		t.Fatalf("SigBlk %s before Start, %s after", before, after)
	}
}

func threadField(t *testing.T, name string) string {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	return field(string(b), name)
}

func TestEligible(t *testing.T) {
	root := func(id int) []syscall.SysProcIDMap {
		return []syscall.SysProcIDMap{{ContainerID: 0, HostID: id, Size: 1}}
	}
	uid, gid := os.Geteuid(), os.Getegid()
	for _, c := range []struct {
		name       string
		flags      uintptr
		uids, gids []syscall.SysProcIDMap
		cred       *syscall.Credential
		want       bool
	}{
		{"root mapped to the caller", unix.CLONE_NEWUSER | unix.CLONE_NEWNS, root(uid), root(gid), nil, supported},
		{"no user namespace", unix.CLONE_NEWNS | unix.CLONE_NEWPID, nil, nil, nil, supported},
		{"no namespace", 0, nil, nil, nil, supported},
		{"maps without a user namespace", unix.CLONE_NEWNS, root(uid), root(gid), nil, false},
		{"time namespace alone", unix.CLONE_NEWTIME, nil, nil, nil, false},
		{"time namespace", unix.CLONE_NEWUSER | unix.CLONE_NEWTIME, root(uid), root(gid), nil, false},
		{"credential", unix.CLONE_NEWUSER, root(uid), root(gid), &syscall.Credential{}, false},
		{"no maps", unix.CLONE_NEWUSER, nil, nil, nil, false},
		{"another uid", unix.CLONE_NEWUSER, root(uid + 1), root(gid), nil, false},
		{"a range", unix.CLONE_NEWUSER, []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 2}}, root(gid), nil, false},
		{"two extents", unix.CLONE_NEWUSER, root(uid), append(root(gid), syscall.SysProcIDMap{ContainerID: 1, HostID: gid + 1, Size: 1}), nil, false},
	} {
		if got := Eligible(c.flags, c.uids, c.gids, c.cred); got != c.want {
			t.Errorf("%s: Eligible %v, want %v", c.name, got, c.want)
		}
	}
}

// Many starts leave no child and no fd behind.
func TestStartLeavesNothing(t *testing.T) {
	needSupported(t)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	for range 50 {
		if ws, out := run(t, unix.CLONE_NEWUSER|unix.CLONE_NEWPID|unix.CLONE_NEWNS, "exit 0"); ws.ExitStatus() != 0 {
			t.Fatalf("child: %v %s", ws, out)
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d fds open before, %d after", before, after)
	}
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Fatalf("a child is left: wait4 gave %v", err)
	}
}

// Starts from several goroutines at once, while the collector runs and
// goroutines are preempted, all succeed: the child borrows the stack of a
// goroutine that neither moves nor runs until the child has exec'd.
func TestStartConcurrent(t *testing.T) {
	needSupported(t)
	stop := make(chan struct{})
	garbage := make(chan int)
	go func() {
		var keep [][]byte
		for i := 0; ; i++ {
			select {
			case <-stop:
				garbage <- len(keep)
				return
			default:
			}
			keep = append(keep, make([]byte, 4096))
			if i%512 == 0 {
				keep = nil
				runtime.GC()
			}
		}
	}()
	errs := make(chan error)
	for range 4 {
		go func() {
			for range 25 {
				ws, out, err := runScript(unix.CLONE_NEWUSER|unix.CLONE_NEWIPC, "exit 3")
				if err == nil && ws.ExitStatus() != 3 {
					err = fmt.Errorf("child: %v %s", ws, out)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	<-garbage
}

// On a kernel that rejects CLONE_PIDFD (before 5.2), Start clones again
// without it and returns no pidfd. The rejection is played here by a flag
// that makes every clone with it invalid (CLONE_FS with CLONE_NEWUSER).
func TestStartWithoutPidfd(t *testing.T) {
	needSupported(t)
	defer func(f uintptr) { pidfdFlag = f }(pidfdFlag)
	pidfdFlag = unix.CLONE_FS
	pid, pidfd, err := Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Cloneflags: unix.CLONE_NEWUSER})
	if err != nil {
		t.Fatal(err)
	}
	if pidfd != -1 {
		t.Errorf("pidfd %d, want -1", pidfd)
		unix.Close(pidfd)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Errorf("child: %v, %v", ws, err)
	}
	// An invalid clone is still refused: both attempts fail.
	if _, _, err := Start(Attr{Path: "/bin/true", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_THREAD}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("clone with CLONE_THREAD without CLONE_SIGHAND: %v, want EINVAL", err)
	}
}
