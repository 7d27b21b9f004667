// Package ownmount mounts a filesystem inside a helper's own mount
// namespace without letting it leak: the helper first checks that it is
// not in the host's mount namespace (internal/nsguard) and makes every
// mount private, since a new mount namespace
// copies the propagation of the host's and a mount on a shared / would
// appear on the host.
package ownmount

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/procfile"
)

// Mount mounts a filesystem of type fstype (source named after it) at
// target, nosuid, nodev and noexec, once the caller's mount namespace is
// known not to be forbidden (the host's) and is made private.
func Mount(forbidden nsfs.ID, fstype, target string) error {
	if err := nsguard.Refuse("mnt", forbidden); err != nil {
		return err
	}
	if err := MakePrivate(); err != nil {
		return err
	}
	if err := unix.Mount(fstype, target, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return helper.Fail("mount "+fstype+" "+target, err)
	}
	return nil
}

// ErrRootNotMount is why / cannot be made private: it is not a mount point,
// as in a chroot into a plain directory. The mounts that / is part of are
// outside the process's root, so nothing here can stop them propagating.
var ErrRootNotMount = errors.New("/ is not a mount point (nscheck runs in a chroot), so its mounts cannot be made private; run nscheck outside the chroot, or make the chroot's directory a mount point (mount --bind DIR DIR) before entering it")

// MakePrivate makes every mount of the caller's mount namespace private
// (mount --make-rprivate /). Callers have checked that the namespace is
// their own: the helper's guard at clone, or Mount's.
func MakePrivate() error {
	err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EINVAL) && !rootIsMount() {
		return &helper.Error{Op: "mount --make-rprivate /", Errno: int(unix.EINVAL), Msg: ErrRootNotMount.Error()}
	}
	return helper.Fail("mount --make-rprivate /", err)
}

// rootIsMount reports whether some mount of this process's table is on /.
func rootIsMount() bool {
	ms, err := procfile.Mounts(0)
	if err != nil {
		return true // cannot tell: report the mount's own error
	}
	for _, m := range ms {
		if m.Mountpoint == "/" {
			return true
		}
	}
	return false
}
