// Package mnt holds the mount namespace properties: what is mounted inside a
// new mount namespace, once its mounts are made private, stays inside; the
// documented propagation semantics (shared, slave, unbindable) hold; a
// mount namespace created with a new user namespace gets the parent's
// shared mounts as slaves and its inherited mounts locked (userns.go); and
// a bind mount cannot be escaped by a rename (escape.go, CVE-2015-2925).
//
// The real host's mount table never changes, not even for a moment. Helpers
// that mount refuse to run in the host's mount namespace (nsguard) and make
// their mounts private first. Properties in which "the host" mounts, or in
// which propagation between peers is shown, build a disposable host of their
// own (lab.go) in the real run too.
package mnt

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// mountArgs asks a helper to mount FSType at Target.
type mountArgs struct {
	FSType string `json:"fstype"`
	Target string `json:"target"`
	// File, when set, is written into the new mount after mounting.
	File string `json:"file,omitempty"`
	// Forbidden is the host's mount namespace: a helper that finds itself
	// in it refuses to touch propagation or mount anything. It guards the
	// host against a kernel that ignores CLONE_NEWNS.
	Forbidden nsfs.ID `json:"forbidden"`
}

type mountFacts struct {
	Listed bool   `json:"listed"`
	FSType string `json:"fstype"`
	// Wrote says the helper wrote File into its mount.
	Wrote bool `json:"wrote,omitempty"`
}

func init() {
	helper.Handle("mnt.mount", mountInside)
}

func mountInside(a mountArgs) (any, error) {
	if err := enter(a.Forbidden, ""); err != nil {
		return nil, err
	}
	if err := unix.Mount(a.FSType, a.Target, a.FSType, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, helper.Fail("mount "+a.FSType+" "+a.Target, err)
	}
	var facts mountFacts
	if a.File != "" {
		if err := os.WriteFile(filepath.Join(a.Target, a.File), []byte("nscheck\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write into the new mount: %w", err)
		}
		facts.Wrote = true
	}
	m, err := mountAt(0, a.Target)
	if err != nil {
		return nil, err
	}
	if m != nil {
		facts.Listed, facts.FSType = true, m.FSType
	}
	return facts, nil
}

var _ = prop.Register(prop.Property{
	ID:       "mnt.proc-mount-no-leak",
	Title:    "a proc mounted inside a new mount namespace (made private) is absent from the host's mountinfo",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNS,
	Premises: []prop.Premise{prop.Scratch},
	// A proc instance belongs to a PID namespace; rootless, mounting one
	// needs a PID namespace that the helper's user namespace owns.
	Check: func(t *prop.Trial) error { return mountNoLeak(t, "proc", unix.CLONE_NEWPID, "") },
})

var _ = prop.Register(prop.Property{
	ID:       "mnt.tmpfs-mount-no-leak",
	Title:    "a tmpfs mounted inside a new mount namespace (made private) is absent from the host's mountinfo, and a file written there is absent on the host",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNS,
	Premises: []prop.Premise{prop.Scratch},
	Check:    func(t *prop.Trial) error { return mountNoLeak(t, "tmpfs", 0, prop.UniqueName("nscheck-file-")) },
})

var _ = prop.Register(prop.DistinctNS("mnt", prop.NeedUserns))

// mountNoLeak mounts fstype on a fresh directory inside a helper (cloned with
// a new mount namespace and extraFlags), writes file into it when set, and
// looks for both from both sides.
func mountNoLeak(t *prop.Trial, fstype string, extraFlags uintptr, file string) error {
	target, err := t.ScratchDir("nscheck-mnt-")
	if err != nil {
		return err
	}
	args := mountArgs{FSType: fstype, Target: target, File: file}
	if args.Forbidden, err = t.Forbidden("mnt"); err != nil {
		return err
	}
	p, err := t.Start(helper.Spec{Action: "mnt.mount", Args: args, Cloneflags: unix.CLONE_NEWNS | extraFlags, Hold: true})
	if err != nil {
		return err
	}
	var inside mountFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	helperView, err := mountedAt(p.PID(), target)
	if err != nil {
		return err
	}
	hostView, err := mountedAt(0, target)
	if err != nil {
		return err
	}
	t.Inside("target", target)
	t.Inside("listed in /proc/self/mountinfo", inside.Listed)
	t.Host(fmt.Sprintf("listed in /proc/%d/mountinfo", p.PID()), helperView)
	t.Host("listed in /proc/self/mountinfo", hostView)
	t.Expect(inside.Listed && inside.FSType == fstype, "inside, the %s mount at %s is not in its own mountinfo", fstype, target)
	t.Expect(helperView, "the host does not see the %s mount in the helper's /proc/%d/mountinfo", fstype, p.PID())
	leaked := !t.Expect(!hostView, "the %s mount at %s leaked into the host's mountinfo", fstype, target)
	if file != "" {
		path := filepath.Join(target, file)
		_, statErr := os.Stat(path)
		t.Inside("wrote "+file, inside.Wrote)
		t.Host("stat "+path, errString(statErr))
		t.Expect(os.IsNotExist(statErr), "the file written inside the tmpfs is visible on the host at %s", path)
	}
	if leaked && !t.Sandboxed {
		// Isolation is broken: never leave the mount on the host.
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
	return nil
}
