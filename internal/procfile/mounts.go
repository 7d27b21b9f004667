package procfile

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Mounts parses /proc/<pid>/mountinfo (0: this process's mount namespace),
// topmost mount last. The mount points, roots and sources come unescaped
// ("\040" is a space again).
//
// It reads the file itself rather than calling mountinfo.GetMounts, which
// locks the calling goroutine to its thread to read /proc/thread-self: a
// process's first LockOSThread starts another thread, and every thread of
// a Go process is in the same mount namespace anyway.
func Mounts(pid int) ([]*mountinfo.Info, error) {
	return read(Path(pid, "mountinfo"), func(r io.Reader) ([]*mountinfo.Info, error) {
		return mountinfo.GetMountsFromReader(r, nil)
	})
}

// HasOption reports whether opt ("ro", "nosuid" ...) is among the
// per-mount options of m (not those of its superblock).
func HasOption(m *mountinfo.Info, opt string) bool {
	for o := range strings.SplitSeq(m.Options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// Propagation tags of a mount's optional fields.
const (
	Shared        = "shared"
	Master        = "master"
	PropagateFrom = "propagate_from"
	Unbindable    = "unbindable"
)

// Optional finds the optional field tag of m ("shared:12" has the tag
// Shared and the value "12"; Unbindable has no value).
func Optional(m *mountinfo.Info, tag string) (value string, ok bool) {
	for _, f := range strings.Fields(m.Optional) {
		if t, v, _ := strings.Cut(f, ":"); t == tag {
			return v, true
		}
	}
	return "", false
}

// Cgroup2Dir is the directory, in mounts, of the cgroup2 cgroup at path
// (as /proc/<pid>/cgroup's 0:: line gives it): the first cgroup2 mount
// whose root contains it. ok is false when no mount shows that cgroup.
func Cgroup2Dir(path string, mounts []*mountinfo.Info) (dir string, ok bool) {
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		if rel, found := strings.CutPrefix(path, m.Root); found && (m.Root == "/" || rel == "" || rel[0] == '/') {
			return filepath.Join(m.Mountpoint, rel), true
		}
	}
	return "", false
}

// Partial says why the proc on /proc is not the whole of it, or "" when it
// is: one mounted with subset=pid (systemd's ProcSubset=pid) has only the
// process directories, without /proc/sys, /proc/sysvipc or /proc/uptime,
// which checks read. The topmost mount on /proc decides; err is a failure
// to read /proc/self/mountinfo.
func Partial() (why string, err error) {
	mounts, err := Mounts(0)
	if err != nil {
		return "", err
	}
	return PartialIn(mounts), nil
}

// PartialIn is Partial on a parsed mount table.
func PartialIn(mounts []*mountinfo.Info) string {
	for i := len(mounts) - 1; i >= 0; i-- {
		m := mounts[i]
		if m.Mountpoint != "/proc" {
			continue
		}
		if m.FSType == "proc" && hasSuperOption(m, "subset=pid") {
			return "/proc is mounted with subset=pid (as systemd's ProcSubset=pid does): it has only the process directories, " +
				"not /proc/sys, /proc/sysvipc or /proc/uptime, which checks read"
		}
		return ""
	}
	return ""
}

// hasSuperOption reports whether opt is among the superblock options of m.
func hasSuperOption(m *mountinfo.Info, opt string) bool {
	for o := range strings.SplitSeq(m.VFSOptions, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
