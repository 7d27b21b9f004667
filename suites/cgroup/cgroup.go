// Package cgroup holds the cgroup namespace properties: a process in a new
// cgroup namespace sees its cgroup as the root "/", and cgroups outside that
// root relative to it ("/.."); and root of a user namespace cannot set the
// release_agent of a cgroup v1 hierarchy (releaseagent.go, CVE-2022-0492).
//
// Both need the reader to sit in another cgroup than the process it reads,
// or no path could tell the namespace's root from the hierarchy's. So the
// check creates a transient child cgroup under the observer's own cgroup in
// the cgroup2 hierarchy, moves a helper into it, lets that helper clone the
// reader (with CLONE_NEWCGROUP, withheld in the control) and removes the
// cgroup when the helpers are gone. It never touches any other cgroup. The
// alternative without a cgroup of its own, reading host init's
// /proc/1/cgroup, cannot have a control: inside the control's sandbox (its
// own PID namespace and /proc) no process in another cgroup is visible.
package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/caps"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

func init() {
	helper.Handle("cgroup.enter", enter)
	helper.Handle("cgroup.read", read)
}

var _ = prop.Register(prop.Property{
	ID:       "cgroup.root-virtualized",
	Title:    "a process in a new cgroup namespace sees its own cgroup as / in /proc/self/cgroup; the host sees its real path",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWCGROUP,
	Premises: []prop.Premise{transient},
	Check:    rootVirtualized,
})

var _ = prop.Register(prop.Property{
	ID:       "cgroup.outside-relative",
	Title:    "a process outside a cgroup namespace's root appears inside with a path relative to it (/..)",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWCGROUP,
	Premises: []prop.Premise{transient},
	Check:    outsideRelative,
})

var _ = prop.Register(prop.DistinctNS("cgroup", prop.NeedUserns))

type enterArgs struct {
	// Dir is the transient cgroup to move into.
	Dir string `json:"dir"`
	// Flags clone the reader.
	Flags uintptr `json:"flags"`
	// Target is the process the reader reads /proc/<pid>/cgroup of.
	Target int `json:"target"`
}

// readFacts is the cgroup2 path ("0::" line) as the reader sees it, of
// itself and of the target.
type readFacts struct {
	Self   string `json:"self"`
	Target string `json:"target"`
}

// enter moves the helper into the transient cgroup, then clones the reader,
// whose cgroup namespace (if it gets one) is rooted there.
func enter(a enterArgs) (any, error) {
	procs := filepath.Join(a.Dir, "cgroup.procs")
	if err := os.WriteFile(procs, []byte("0"), 0); err != nil {
		return nil, helper.Fail("join "+a.Dir, err)
	}
	s := helper.Spec{Action: "cgroup.read", Args: a.Target, Cloneflags: a.Flags}
	if a.Flags&unix.CLONE_NEWUSER != 0 {
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	var f readFacts
	if err := helper.Run(context.Background(), s, &f); err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	return f, nil
}

func read(target int) (any, error) {
	var f readFacts
	var err error
	if f.Self, err = unifiedPath(0); err != nil {
		return nil, err
	}
	if f.Target, err = unifiedPath(target); err != nil {
		return nil, err
	}
	return f, nil
}

// unifiedPath is the cgroup2 path of pid (0 means self) in /proc/<pid>/cgroup,
// relative to the reader's cgroup namespace root.
func unifiedPath(pid int) (string, error) {
	cgs, err := procfile.ReadCgroups(pid)
	if err != nil {
		return "", err
	}
	for _, c := range cgs {
		if c.HierarchyID == 0 {
			return c.Path, nil
		}
	}
	return "", errNoCgroup2
}

var errNoCgroup2 = errors.New("no cgroup2 hierarchy in /proc/self/cgroup")

// placed is a reader placed in a transient cgroup, and both sides' views.
type placed struct {
	in       readFacts
	own      string // the observer's cgroup2 path
	helper   string // the path the host sees for the helper in the transient cgroup
	observer int
}

// mkdirError classifies a failure to create a transient cgroup: a
// directory nscheck may not write is an unmet premise, naming why.
func mkdirError(base string, err error) error {
	// The reason names the parent, not the random name: a skip says the
	// same in every run, and as env predicts it.
	why := base + ": " + errname.Of(err)
	if s, cerr := caps.Self(); cerr == nil && os.Geteuid() == 0 && errors.Is(err, os.ErrPermission) && !s.Effective.Has(unix.CAP_DAC_OVERRIDE) {
		return prop.Unmet(fmt.Sprintf("cannot create a transient cgroup under its own (%s): the directory is not writable by its mode and nscheck lacks CAP_DAC_OVERRIDE (in %s)", why, prop.UserNSName()),
			"give nscheck CAP_DAC_OVERRIDE (do not drop it from the bounding set; docker run --cap-add DAC_OVERRIDE)")
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS) {
		return prop.Unmet(fmt.Sprintf("cannot create a transient cgroup under its own (%s)", why), "run as root, or in a cgroup2 subtree delegated to this user (systemd-run --user --scope -p Delegate=yes)")
	}
	return fmt.Errorf("create transient cgroup: %w", err)
}

// transient is the premise of the properties that place a helper in a
// cgroup of their own: one can be created under nscheck's cgroup.
var transient = prop.Premise{Key: "cgroup:transient", Why: "placing a helper in a transient cgroup", Probe: func(context.Context) error {
	own, err := unifiedPath(0)
	if errors.Is(err, errNoCgroup2) {
		return noCgroup2
	}
	if err != nil {
		return err
	}
	base, err := mountedCgroupDir(own)
	if err != nil {
		return err
	}
	dir := filepath.Join(base, prop.UniqueName(prop.RunNamePrefix()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return mkdirError(base, err)
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("remove the probe cgroup %s: %w", dir, err)
	}
	return nil
}}

var noCgroup2 = prop.Unmet("this host has no cgroup2 hierarchy (no 0:: line in /proc/self/cgroup)", "boot with systemd.unified_cgroup_hierarchy=1, or mount cgroup2")

// place creates the transient cgroup, runs the reader in it and records the
// common evidence.
func place(t *prop.Trial) (*placed, error) {
	own, err := unifiedPath(0)
	if errors.Is(err, errNoCgroup2) {
		return nil, noCgroup2
	}
	if err != nil {
		return nil, err
	}
	base, err := ownCgroupDir(t, own)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, prop.UniqueName(prop.RunNamePrefix()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, mkdirError(base, err)
	}
	t.Defer(func() { removeCgroup(t, dir) })

	flags := uintptr(unix.CLONE_NEWCGROUP)
	if !t.Isolated {
		flags = 0
	}
	if t.Rootless && !t.Sandboxed {
		flags |= unix.CLONE_NEWUSER
	}
	observer, err := prop.SelfPID()
	if err != nil {
		return nil, err
	}
	pl := &placed{own: own, observer: observer}
	p, err := t.Start(helper.Spec{Action: "cgroup.enter", Args: enterArgs{Dir: dir, Flags: flags, Target: pl.observer}, Hold: true})
	if err != nil {
		return nil, err
	}
	if err := p.Facts(&pl.in); err != nil {
		return nil, err
	}
	if pl.helper, err = unifiedPath(p.PID()); err != nil {
		return nil, err
	}
	t.Host("transient cgroup", dir)
	t.Host("own cgroup", own)
	t.Host(fmt.Sprintf("/proc/%d/cgroup (helper in the transient cgroup)", p.PID()), pl.helper)
	t.Expect(pl.helper != own && strings.HasPrefix(pl.helper, strings.TrimSuffix(own, "/")+"/"),
		"the host sees the helper in %s, not in a child of its own cgroup %s", pl.helper, own)
	return pl, nil
}

// ownCgroupDir finds the directory of the observer's own cgroup2 cgroup. In
// the control's sandbox, which has a cgroup namespace (and a private mount
// namespace) of its own, a fresh cgroup2 mount is rooted there; on the host
// the existing mount is used, never a new one.
func ownCgroupDir(t *prop.Trial, own string) (string, error) {
	if t.Sandboxed {
		dir, err := prop.ScratchDir("cgroup2-")
		if err != nil {
			return "", err
		}
		if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return "", helper.Fail("mount cgroup2 "+dir, err)
		}
		t.Defer(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		return dir, nil
	}
	return mountedCgroupDir(own)
}

// mountedCgroupDir is the directory of the cgroup2 cgroup own in the
// mounts this process sees.
func mountedCgroupDir(own string) (string, error) {
	mounts, err := procfile.Mounts(0)
	if err != nil {
		return "", err
	}
	if dir, ok := procfile.Cgroup2Dir(own, mounts); ok {
		return dir, nil
	}
	return "", prop.Skip("no cgroup2 mount shows this process's cgroup %s: mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup)", own)
}

// removeCgroup removes the transient cgroup once its helpers are gone (see
// removeWhenEmpty), and records it when it could not.
func removeCgroup(t *prop.Trial, dir string) {
	if err := removeWhenEmpty(dir, time.Now().Add(prop.TrialTimeout())); err != nil {
		t.Host("transient cgroup NOT removed", err.Error())
	}
}

func rootVirtualized(t *prop.Trial) error {
	pl, err := place(t)
	if err != nil {
		return err
	}
	t.Inside("/proc/self/cgroup", pl.in.Self)
	t.Expect(pl.in.Self == "/", "inside, the reader's own cgroup reads %s, not the namespace root /", pl.in.Self)
	return nil
}

func outsideRelative(t *prop.Trial) error {
	pl, err := place(t)
	if err != nil {
		return err
	}
	t.Inside("/proc/"+strconv.Itoa(pl.observer)+"/cgroup (the observer, in the parent cgroup)", pl.in.Target)
	t.Expect(pl.in.Target == "/..", "inside, the observer's cgroup, the parent of the namespace root, reads %s, not /..", pl.in.Target)
	return nil
}
