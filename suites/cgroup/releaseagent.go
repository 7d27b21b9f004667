package cgroup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// CVE-2022-0492: the release_agent of a cgroup v1 hierarchy is a program
// the kernel runs as root of the host when a cgroup empties; before the fix
// root of a user namespace (with a cgroup namespace of its own, in which it
// may mount an existing v1 hierarchy) could set it and escape. The probe
// mounts such a hierarchy in a throwaway mount namespace and writes back
// the value it read: even a vulnerable kernel is left as it was.

// agentArgs asks a helper to mount the v1 hierarchy of Options at Dir (in
// its own mount namespace) and write its release_agent back.
type agentArgs struct {
	Dir       string  `json:"dir"`
	Options   string  `json:"options"`
	Forbidden nsfs.ID `json:"forbidden"`
}

type agentFacts struct {
	Mount string `json:"mount"`
	Open  string `json:"open release_agent O_WRONLY,omitempty"`
	Write string `json:"write the value back,omitempty"`
	// Before and After are the release_agent read before and after.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

func init() {
	helper.Handle("cgroup.release-agent", releaseAgent)
}

func releaseAgent(a agentArgs) (any, error) {
	if err := nsguard.Refuse("mnt", a.Forbidden); err != nil {
		return nil, err
	}
	if err := ownmount.MakePrivate(); err != nil {
		return nil, err
	}
	var f agentFacts
	err := unix.Mount("cgroup", a.Dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, a.Options)
	if f.Mount = errname.Of(err); err != nil {
		return f, nil
	}
	path := filepath.Join(a.Dir, "release_agent")
	before, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read release_agent: %w", err)
	}
	f.Before = string(before)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if f.Open = errname.Of(err); err != nil {
		return f, nil
	}
	// The very value read (the kernel strips the newline): unchanged
	// whether the kernel lets it through or not.
	_, err = unix.Write(fd, before)
	unix.Close(fd)
	f.Write = errname.Of(err)
	after, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read release_agent: %w", err)
	}
	f.After = string(after)
	return f, nil
}

// v1Hierarchy finds a cgroup v1 hierarchy in which nscheck is in the root
// cgroup (a cgroup namespace then has the root, where release_agent is),
// and the mount options that name it.
func v1Hierarchy() (options string, err error) {
	cgs, err := procfile.ReadCgroups(0)
	if err != nil {
		return "", err
	}
	found := false
	for _, c := range cgs {
		if c.HierarchyID == 0 || c.Controllers == "" {
			continue
		}
		found = true
		if c.Path != "/" {
			continue
		}
		if strings.HasPrefix(c.Controllers, "name=") {
			return "none," + c.Controllers, nil
		}
		return c.Controllers, nil
	}
	if found {
		return "", prop.Unmet("nscheck is in a child cgroup of every cgroup v1 hierarchy: a cgroup namespace made here does not have the hierarchy's root, where release_agent is",
			"run nscheck from the root cgroup of a v1 hierarchy (e.g. on the host, not in a container)")
	}
	return "", prop.Unmet("no cgroup v1 hierarchy exists here (only the unified cgroup2 one): a user namespace can mount only an existing v1 hierarchy, so release_agent is out of its reach",
		"nothing to fix; to exercise the check, boot with cgroup v1 hierarchies (systemd.unified_cgroup_hierarchy=0), or run the kernel under `nscheck vm`, whose guest mounts one")
}

var v1Premise = prop.Premise{Key: "cgroup-v1-root", Why: "mounting an existing cgroup v1 hierarchy from a new cgroup namespace",
	Probe: func(context.Context) error { _, err := v1Hierarchy(); return err }}

var _ = prop.Register(prop.Property{
	ID: "cgroup.v1-release-agent",
	Title: "root of a new user namespace (with its own cgroup and mount namespaces) that mounts a cgroup v1 hierarchy cannot write its release_agent " +
		"(EPERM). CVE-2022-0492, fixed in Linux 5.17 and 5.16.7, 5.15.21, 5.10.98, 5.4.177, 4.19.228, 4.14.265, 4.9.300 (\"cgroup-v1: Require " +
		"capabilities to set release_agent\"); the probe writes back the value it read. Skipped where no v1 hierarchy exists",
	Needs: prop.NeedRoot,
	// Nominal: the sandbox of the control has its own cgroup namespace (as
	// root, no user namespace); what the control withholds is the helper's
	// user namespace.
	Flag: unix.CLONE_NEWCGROUP,
	Tags: []string{"cve:CVE-2022-0492"},
	Premises: []prop.Premise{
		prop.Scratch,
		v1Premise,
		prop.Creates(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP, "the helper that mounts the hierarchy"),
	},
	Check: v1ReleaseAgent,
})

// v1ReleaseAgent: the helper's user namespace maps its root to the host's
// root (the condition of the exploit: file permissions let it open the
// file, only the kernel's own check refuses the write). The control
// withholds the user namespace: root of the sandbox may write it.
func v1ReleaseAgent(t *prop.Trial) error {
	options, err := v1Hierarchy()
	if err != nil {
		return err
	}
	dir, err := t.ScratchDir("nscheck-cgroup1-")
	if err != nil {
		return err
	}
	a := agentArgs{Dir: dir, Options: options}
	if a.Forbidden, err = t.Forbidden("mnt"); err != nil {
		return err
	}
	s := helper.Spec{Action: "cgroup.release-agent", Args: a, Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP}
	if t.Isolated {
		s.Cloneflags |= unix.CLONE_NEWUSER
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	var in agentFacts
	if err := t.Run(s, &in); err != nil {
		return err
	}
	t.Inside("mount -t cgroup -o "+options, in.Mount)
	t.Inside("open release_agent O_WRONLY", in.Open)
	t.Inside("write the value back", in.Write)
	t.Inside("release_agent before", in.Before)
	t.Inside("release_agent after", in.After)
	if in.Mount != errname.OK {
		return prop.Unmet(fmt.Sprintf("mounting the existing cgroup v1 hierarchy %q from a new user+cgroup namespace failed (%s)", options, in.Mount),
			"see `nscheck env`: a policy (an LSM) may refuse mounts in user namespaces")
	}
	t.Expect(in.Before == in.After, "the release_agent changed from %q to %q", in.Before, in.After)
	t.Expect(errname.Is(in.Write, unix.EPERM) || errname.Is(in.Open, unix.EACCES),
		"root of a user namespace wrote the release_agent of a cgroup v1 hierarchy (open: %s, write: %s; want EPERM): CVE-2022-0492", in.Open, in.Write)
	return nil
}
