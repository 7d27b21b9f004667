// Package mnt holds the mount namespace properties: what is mounted inside a
// new mount namespace, once its mounts are made private, stays inside.
package mnt

import (
	"fmt"
	"os"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/prop"
)

// mountArgs asks a helper to mount FSType at Target.
type mountArgs struct {
	FSType string `json:"fstype"`
	Target string `json:"target"`
	// Forbidden is the host's mount namespace: a helper that finds itself
	// in it refuses to touch propagation or mount anything. It guards the
	// host against a kernel that ignores CLONE_NEWNS.
	Forbidden nsfs.ID `json:"forbidden"`
}

type mountFacts struct {
	Listed bool   `json:"listed"`
	FSType string `json:"fstype"`
}

func init() {
	helper.Handle("mnt.mount", mountInside)
}

func mountInside(a mountArgs) (any, error) {
	own, err := nsfs.Of(0, "mnt")
	if err != nil {
		return nil, err
	}
	if own == a.Forbidden {
		return nil, fmt.Errorf("refusing to mount: this helper is in the host's mount namespace %s", own)
	}
	// Deliberately private: with a shared / the mount would propagate out.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, helper.Fail("mount --make-rprivate /", err)
	}
	if err := unix.Mount(a.FSType, a.Target, a.FSType, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, helper.Fail("mount "+a.FSType+" "+a.Target, err)
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	m := find(mounts, a.Target)
	if m == nil {
		return mountFacts{}, nil
	}
	return mountFacts{Listed: true, FSType: m.FSType}, nil
}

func find(mounts []*procfs.MountInfo, target string) *procfs.MountInfo {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].MountPoint == target {
			return mounts[i]
		}
	}
	return nil
}

var _ = prop.Register(prop.Property{
	ID:    "mnt.proc-mount-no-leak",
	Title: "a proc mounted inside a new mount namespace (made private) is absent from the host's mountinfo",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWNS,
	// A proc instance belongs to a PID namespace; rootless, mounting one
	// needs a PID namespace that the helper's user namespace owns.
	Check: func(t *prop.Trial) error { return mountNoLeak(t, "proc", unix.CLONE_NEWPID) },
})

var _ = prop.Register(prop.DistinctNS("mnt", prop.NeedUserns))

// mountNoLeak mounts fstype on a fresh directory inside a helper (cloned with
// a new mount namespace and extraFlags) and looks for it from both sides.
func mountNoLeak(t *prop.Trial, fstype string, extraFlags uintptr) error {
	target, err := os.MkdirTemp("", "nscheck-mnt-")
	if err != nil {
		return fmt.Errorf("mkdtemp: %w", err)
	}
	t.Defer(func() { _ = os.Remove(target) })
	args := mountArgs{FSType: fstype, Target: target}
	if !t.Sandboxed {
		if args.Forbidden, err = nsfs.Of(0, "mnt"); err != nil {
			return err
		}
	}
	p, err := t.Start(helper.Spec{Action: "mnt.mount", Args: args, Cloneflags: unix.CLONE_NEWNS | extraFlags, Hold: true})
	if err != nil {
		return err
	}
	var inside mountFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	helperView, err := procfs.GetProcMounts(p.PID())
	if err != nil {
		return fmt.Errorf("read /proc/%d/mountinfo: %w", p.PID(), err)
	}
	hostView, err := procfs.GetMounts()
	if err != nil {
		return fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	leaked := find(hostView, target)
	t.Inside("target", target)
	t.Inside("listed in /proc/self/mountinfo", inside.Listed)
	t.Host("listed in /proc/"+fmt.Sprint(p.PID())+"/mountinfo", find(helperView, target) != nil)
	t.Host("listed in /proc/self/mountinfo", leaked != nil)
	t.Expect(inside.Listed && inside.FSType == fstype, "inside, the %s mount at %s is not in its own mountinfo", fstype, target)
	t.Expect(find(helperView, target) != nil, "the host does not see the %s mount in the helper's /proc/%d/mountinfo", fstype, p.PID())
	if !t.Expect(leaked == nil, "the %s mount at %s leaked into the host's mountinfo", fstype, target) && !t.Sandboxed {
		// Isolation is broken: never leave the mount on the host.
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
	return nil
}
