package mqueue

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func uniqueName(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "/nscheck-test-" + hex.EncodeToString(b[:])
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"/q", "/nscheck-1", "/" + strings.Repeat("a", maxName)} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "q", "/", "/.", "/..", "/a/b", "/a\x00", "/" + strings.Repeat("a", maxName+1)} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%q) accepted a bad name", bad)
		}
	}
	if _, err := Open("no-slash", unix.O_RDONLY, 0); err == nil {
		t.Error("Open accepted a name without a slash")
	}
}

// Opening a name that does not exist, without O_CREAT, changes nothing.
func TestOpenMissing(t *testing.T) {
	_, err := Open(uniqueName(t), unix.O_RDONLY, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("kernel without POSIX message queues (CONFIG_POSIX_MQUEUE)")
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
}

// The life cycle of a queue, in an IPC namespace of one locked thread's own
// (unshare(CLONE_NEWIPC) moves only the calling thread), so the host never
// gets a queue. The thread is never unlocked: it dies with its goroutine.
func TestLifeCycleInPrivateNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare(CLONE_NEWIPC)")
	}
	name := uniqueName(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- lifeCycle(name)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, unix.O_RDONLY, 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("the host sees the queue of the private namespace: %v", err)
	}
}

func lifeCycle(name string) error {
	if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
		return err
	}
	fd, err := Open(name, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	unix.Close(fd)
	if _, err := Open(name, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR, 0o600); !errors.Is(err, unix.EEXIST) {
		return errors.Join(errors.New("second exclusive create did not fail with EEXIST"), err)
	}
	fd, err = Open(name, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	unix.Close(fd)
	if err := Unlink(name); err != nil {
		return err
	}
	if _, err := Open(name, unix.O_RDONLY, 0); !errors.Is(err, unix.ENOENT) {
		return errors.Join(errors.New("open after unlink did not fail with ENOENT"), err)
	}
	return nil
}
