package mnt

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// escapeArgs drives the bind-mount escape probe (CVE-2015-2925), in a
// mount namespace of the helper's own on a tmpfs of its own at Dir:
// a/b/c, a marker in a (outside b), b bind-mounted at m (when Bind); a
// directory fd is taken at c through the bind mount, c is renamed out of
// b, and the fd walks up.
type escapeArgs struct {
	Dir       string  `json:"dir"`
	Forbidden nsfs.ID `json:"forbidden"`
	Bind      bool    `json:"bind"`
}

type escapeFacts struct {
	// DotDot is the outcome of openat(fd, ".."), Escaped whether what it
	// opened holds the marker that lies outside the bind mount.
	DotDot  string `json:"dotdot"`
	Escaped bool   `json:"escaped"`
}

const escapeMarker = "outside-the-bind-mount"

func init() {
	helper.Handle("mnt.bind-escape", bindEscape)
}

func bindEscape(a escapeArgs) (any, error) {
	if err := enter(a.Forbidden, ""); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", a.Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0700"); err != nil {
		return nil, helper.Fail("mount tmpfs "+a.Dir, err)
	}
	p := func(n string) string { return filepath.Join(a.Dir, n) }
	if err := os.MkdirAll(p("a/b/c"), 0o700); err != nil {
		return nil, fmt.Errorf("mkdir in the probe's tmpfs: %w", err)
	}
	if err := os.WriteFile(p("a/"+escapeMarker), nil, 0o600); err != nil {
		return nil, fmt.Errorf("write the marker: %w", err)
	}
	start := p("a/b/c")
	if a.Bind {
		if err := os.Mkdir(p("m"), 0o700); err != nil {
			return nil, fmt.Errorf("mkdir in the probe's tmpfs: %w", err)
		}
		if err := unix.Mount(p("a/b"), p("m"), "", unix.MS_BIND, ""); err != nil {
			return nil, helper.Fail("bind mount a/b at m", err)
		}
		start = p("m/c")
	}
	fd, err := unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, helper.Fail("open "+start, err)
	}
	defer unix.Close(fd)
	if err := os.Rename(p("a/b/c"), p("a/c")); err != nil {
		return nil, fmt.Errorf("rename c out of the bind mount's tree: %w", err)
	}
	var f escapeFacts
	up, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	f.DotDot = errname.Of(err)
	if err == nil {
		defer unix.Close(up)
		var st unix.Stat_t
		f.Escaped = unix.Fstatat(up, escapeMarker, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID: "mnt.bind-rename-escape",
	Title: "a directory renamed out of a bind mount's subtree cannot reach the rest of the file system through \"..\" from a descriptor opened " +
		"through the bind mount (ENOENT). CVE-2015-2925, fixed in Linux 4.3 and 4.2.4 (\"vfs: Test for and handle paths that are unreachable " +
		"from their mnt_root\"); probed on a tmpfs of a throwaway mount namespace",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWNS,
	Tags:     []string{"cve:CVE-2015-2925"},
	Premises: []prop.Premise{prop.Scratch},
	Check:    bindRenameEscape,
})

// bindRenameEscape: the control withholds the bind mount (the descriptor is
// opened on the tmpfs itself, where ".." legitimately reaches the marker),
// which shows that the check sees an escape when there is one.
func bindRenameEscape(t *prop.Trial) error {
	dir, err := t.ScratchDir("nscheck-escape-")
	if err != nil {
		return err
	}
	a := escapeArgs{Dir: dir, Bind: t.Isolated}
	if a.Forbidden, err = t.Forbidden("mnt"); err != nil {
		return err
	}
	var in escapeFacts
	if err := t.Run(helper.Spec{Action: "mnt.bind-escape", Args: a, Cloneflags: unix.CLONE_NEWNS}, &in); err != nil {
		return err
	}
	own, err := mountedAt(0, dir)
	if err != nil {
		return err
	}
	t.Inside("through a bind mount", a.Bind)
	record(t.Inside, "", in)
	t.Host("probe tmpfs in /proc/self/mountinfo", own)
	t.Expect(!own, "the probe's tmpfs at %s is in the host's mount table", dir)
	t.Expect(!in.Escaped, "\"..\" of a directory renamed out of the bind mount reached the marker outside it (openat: %s): the bind mount can be escaped", in.DotDot)
	t.Expect(errname.Is(in.DotDot, unix.ENOENT), "openat(\"..\") of a directory renamed out of the bind mount gave %s, want ENOENT", in.DotDot)
	return nil
}
