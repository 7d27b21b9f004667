// Package ownmount mounts a filesystem inside a helper's own mount
// namespace without letting it leak: the helper first checks that it is
// not in the host's mount namespace (internal/nsguard) and makes every
// mount private, since a new mount namespace
// copies the propagation of the host's and a mount on a shared / would
// appear on the host.
package ownmount

import (
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
)

// Mount mounts a filesystem of type fstype (source named after it) at
// target, nosuid, nodev and noexec, once the caller's mount namespace is
// known not to be forbidden (the host's) and is made private.
func Mount(forbidden nsfs.ID, fstype, target string) error {
	if err := nsguard.Refuse("mnt", forbidden); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return helper.Fail("mount --make-rprivate /", err)
	}
	if err := unix.Mount(fstype, target, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return helper.Fail("mount "+fstype+" "+target, err)
	}
	return nil
}
