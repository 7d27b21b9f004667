package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/prop"
)

// scratchCgroup makes an empty cgroup under this process's own one in the
// cgroup2 hierarchy, removed at the end of the test.
func scratchCgroup(t *testing.T) string {
	t.Helper()
	own, err := unifiedPath(0)
	if err != nil {
		t.Skipf("no cgroup2 hierarchy here: %v", err)
	}
	base, err := mountedCgroupDir(own)
	if err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(base, prop.UniqueName("nscheck-test-"))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s (run as root): %v", base, err)
	}
	t.Cleanup(func() { _ = unix.Rmdir(dir) })
	return dir
}

// startIn starts a process that sleeps in the cgroup dir (cloned straight
// into it), killed and reaped at the end of the test.
func startIn(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestRemoveWhenEmptyWaitsForTheLastProcess(t *testing.T) {
	dir := scratchCgroup(t)
	sleeper := startIn(t, dir)
	waits := make(chan struct{}, 16)
	waiting = func() { waits <- struct{}{} }
	defer func() { waiting = func() {} }()
	done := make(chan error, 1)
	go func() { done <- removeWhenEmpty(dir, time.Now().Add(time.Minute)) }()
	select {
	case err := <-done:
		t.Fatalf("returned %v while a process is in the cgroup", err)
	case <-waits:
	}
	if err := sleeper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sleeper.Wait()
	if err := <-done; err != nil {
		t.Fatalf("after the last process left: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
}

func TestRemoveWhenEmptyGivesUp(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		dir := scratchCgroup(t)
		startIn(t, dir)
		err := removeWhenEmpty(dir, time.Now().Add(100*time.Millisecond))
		if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("err = %v, want EBUSY past the deadline", err)
		}
	})
	t.Run("child cgroup", func(t *testing.T) {
		dir := scratchCgroup(t)
		child := filepath.Join(dir, "child")
		if err := os.Mkdir(child, 0o755); err != nil {
			t.Fatal(err)
		}
		defer unix.Rmdir(child)
		// Empty but refused: an error at once, not a wait for the minute.
		start := time.Now()
		err := removeWhenEmpty(dir, start.Add(time.Minute))
		if !errors.Is(err, unix.EBUSY) || time.Since(start) > 30*time.Second {
			t.Fatalf("err = %v after %v, want EBUSY at once", err, time.Since(start))
		}
	})
	t.Run("gone", func(t *testing.T) {
		if err := removeWhenEmpty(filepath.Join(t.TempDir(), "absent"), time.Now()); err != nil {
			t.Fatalf("a cgroup already gone: %v", err)
		}
	})
}
