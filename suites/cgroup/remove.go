package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// removeWhenEmpty removes the cgroup dir, waiting until deadline for its
// last process to leave: a helper that was just reaped can still count in
// it for a moment, and cgroup2 refuses to remove a populated cgroup (EBUSY).
// It waits on the kernel's word rather than polling: cgroup.events says
// "populated 0" once the cgroup (and every descendant) is empty, and the
// kernel signals a change of that file to inotify as a modification. A
// cgroup that is empty and still refused has child cgroups: that is an
// error at once, not a wait.
func removeWhenEmpty(dir string, deadline time.Time) error {
	err := rmdir(dir)
	if !errors.Is(err, unix.EBUSY) {
		return err
	}
	events := filepath.Join(dir, "cgroup.events")
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify_init1: %w", err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, events, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", events, err)
	}
	for {
		// Read after the watch is set: a change between the two is seen.
		populated, err := isPopulated(events)
		if err != nil {
			return err
		}
		if !populated {
			return rmdir(dir)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("rmdir %s: still populated after the deadline: %w", dir, unix.EBUSY)
		}
		waiting()
		fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll inotify: %w", err)
		}
		drain(in)
	}
}

// waiting is called each time removeWhenEmpty starts to wait (tests).
var waiting = func() {}

func rmdir(dir string) error {
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %s: %w", dir, err)
	}
	return nil
}

// isPopulated reads the "populated" key of a cgroup.events file.
func isPopulated(events string) (bool, error) {
	data, err := os.ReadFile(events)
	if err != nil {
		return false, err
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("populated ")); ok {
			return string(v) != "0", nil
		}
	}
	return false, fmt.Errorf("%s has no populated line", events)
}

// drain empties the non-blocking inotify fd (the events themselves do not
// matter: the file is read again).
func drain(fd int) {
	buf := make([]byte, 4096)
	for {
		if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
			return
		}
	}
}
