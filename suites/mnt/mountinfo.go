package mnt

import (
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
)

// find returns the topmost mount at target, nil when nothing is mounted there.
func find(mounts []*procfs.MountInfo, target string) *procfs.MountInfo {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].MountPoint == target {
			return mounts[i]
		}
	}
	return nil
}

// mounts reads the mountinfo of pid (0: this process).
func mounts(pid int) ([]*procfs.MountInfo, error) {
	if pid == 0 {
		m, err := procfs.GetMounts()
		if err != nil {
			return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
		}
		return m, nil
	}
	m, err := procfs.GetProcMounts(pid)
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/mountinfo: %w", pid, err)
	}
	return m, nil
}

// mountAt is the topmost mount at target in pid's mount namespace (0: own).
func mountAt(pid int, target string) (*procfs.MountInfo, error) {
	m, err := mounts(pid)
	if err != nil {
		return nil, err
	}
	return find(m, target), nil
}

// mountedAt says whether anything is mounted at target for pid (0: own).
func mountedAt(pid int, target string) (bool, error) {
	m, err := mountAt(pid, target)
	return m != nil, err
}

// enter is every mounting helper's first step: refuse to run in the host's
// mount namespace, then make the mounts of this one private, all of them or
// all but keep (a lab directory whose propagation the property is about).
// Without this, a mount made in a new mount namespace propagates to the
// host whenever the host's / is shared.
func enter(forbidden nsfs.ID, keep string) error {
	if err := nsguard.Check("mnt", forbidden); err != nil {
		return err
	}
	if keep == "" {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return helper.Fail("mount --make-rprivate /", err)
		}
		return nil
	}
	ms, err := mounts(0)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, shared := m.OptionalFields["shared"]; !shared || under(m.MountPoint, keep) {
			continue
		}
		if err := unix.Mount("", m.MountPoint, "", unix.MS_PRIVATE, ""); err != nil {
			return helper.Fail("mount --make-private "+m.MountPoint, err)
		}
	}
	// Deliberately checked, not assumed: nothing outside keep may still
	// propagate anywhere.
	if ms, err = mounts(0); err != nil {
		return err
	}
	for _, m := range ms {
		if _, shared := m.OptionalFields["shared"]; shared && !under(m.MountPoint, keep) {
			return fmt.Errorf("refusing to mount: %s is still shared after making it private", m.MountPoint)
		}
	}
	return nil
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// propagation renders the propagation of a mount as mountinfo shows it
// ("shared:12 master:3", "private", "unbindable").
func propagation(m *procfs.MountInfo) string {
	if m == nil {
		return "not mounted"
	}
	if len(m.OptionalFields) == 0 {
		return "private"
	}
	var parts []string
	for _, k := range []string{"shared", "master", "propagate_from", "unbindable"} {
		if v, ok := m.OptionalFields[k]; ok {
			if v == "" {
				parts = append(parts, k)
			} else {
				parts = append(parts, k+":"+v)
			}
		}
	}
	return strings.Join(parts, " ")
}

func errString(err error) string { return errname.Of(err) }
