package mnt

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/procfile"
)

// find returns the topmost mount at target, nil when nothing is mounted there.
func find(mounts []*mountinfo.Info, target string) *mountinfo.Info {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Mountpoint == target {
			return mounts[i]
		}
	}
	return nil
}

// mounts reads the mountinfo of pid (0: this process).
func mounts(pid int) ([]*mountinfo.Info, error) { return procfile.Mounts(pid) }

// mountAt is the topmost mount at target in pid's mount namespace (0: own).
func mountAt(pid int, target string) (*mountinfo.Info, error) {
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
	if err := nsguard.Refuse("mnt", forbidden); err != nil {
		return err
	}
	if keep == "" {
		return ownmount.MakePrivate()
	}
	ms, err := mounts(0)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, shared := procfile.Optional(m, procfile.Shared); !shared || under(m.Mountpoint, keep) {
			continue
		}
		if err := unix.Mount("", m.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
			return helper.Fail("mount --make-private "+m.Mountpoint, err)
		}
	}
	// Deliberately checked, not assumed: nothing outside keep may still
	// propagate anywhere.
	if ms, err = mounts(0); err != nil {
		return err
	}
	for _, m := range ms {
		if _, shared := procfile.Optional(m, procfile.Shared); shared && !under(m.Mountpoint, keep) {
			return fmt.Errorf("refusing to mount: %s is still shared after making it private", m.Mountpoint)
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
func propagation(m *mountinfo.Info) string {
	if m == nil {
		return "not mounted"
	}
	var parts []string
	for _, k := range []string{procfile.Shared, procfile.Master, procfile.PropagateFrom, procfile.Unbindable} {
		if v, ok := procfile.Optional(m, k); ok {
			if v == "" {
				parts = append(parts, k)
			} else {
				parts = append(parts, k+":"+v)
			}
		}
	}
	if len(parts) == 0 {
		return "private"
	}
	return strings.Join(parts, " ")
}

func errString(err error) string { return errname.Of(err) }
