package user

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/forkchain"
	"github.com/nscheck/nscheck/prop"
)

// Regression properties for known user namespace bugs of the kernel, each
// labelled with its CVE. Every probe is safe on a vulnerable kernel too: it
// shows the bug on objects of its own (a nested namespace, a file in a
// private directory, a chroot of its own) and never exploits it.

// extentsArgs asks a helper (in a user namespace A) to create a nested
// user namespace B whose maps have more than five extents (the kernel
// then keeps them sorted in separate forward and reverse arrays), in which
// root creates a file in Dir; and to try another such map that names an id
// A does not map.
type extentsArgs struct {
	Extents  int    `json:"extents"`
	Unmapped uint32 `json:"unmapped"`
	Dir      string `json:"dir"`
}

type extentsFacts struct {
	B probeFacts `json:"b"`
	// Unmapped is the outcome of starting a helper whose map names the id
	// A does not map.
	Unmapped string `json:"unmapped"`
}

// extentMap maps ids 0..n-1 to themselves, one extent each, plus extra.
func extentMap(n int, extra ...syscall.SysProcIDMap) []syscall.SysProcIDMap {
	m := make([]syscall.SysProcIDMap, 0, n+len(extra))
	for i := range n {
		m = append(m, syscall.SysProcIDMap{ContainerID: i, HostID: i, Size: 1})
	}
	return append(m, extra...)
}

func init() {
	helper.Handle("user.nested-extents", func(a extentsArgs) (any, error) {
		var f extentsFacts
		s := helper.Spec{Action: "user.probe", Args: probeArgs{CreateIn: a.Dir}, Cloneflags: unix.CLONE_NEWUSER,
			UIDMappings: extentMap(a.Extents), GIDMappings: extentMap(a.Extents)}
		if err := helper.Run(context.Background(), s, &f.B); err != nil {
			return nil, err
		}
		bad := syscall.SysProcIDMap{ContainerID: a.Extents, HostID: int(a.Unmapped), Size: 1}
		s = helper.Spec{Action: "user.probe", Args: probeArgs{}, Cloneflags: unix.CLONE_NEWUSER,
			UIDMappings: extentMap(a.Extents, bad), GIDMappings: extentMap(a.Extents)}
		err := helper.Run(context.Background(), s, nil)
		if _, refused := helper.Refused(err); err != nil && !refused {
			return nil, err
		}
		f.Unmapped = errname.Of(helper.Errno(err))
		if err == nil {
			f.Unmapped = errname.OK
		}
		return f, nil
	})
}

// cveIDs is the range root of namespace A maps to: outside the ids of
// any real user, and wide enough for B's extents.
const cveIDs = 65536

var _ = prop.Register(prop.Property{
	ID: "user.nested-map-extents",
	Title: "a user namespace nested in another with more than five map extents maps its ids through the parent's map: its root is the parent's " +
		"outside id, the host's root is unmapped (overflow) inside, and an extent naming an id the parent lacks is refused. CVE-2018-18955, " +
		"fixed in Linux 4.20 and 4.19.2 (\"userns: also map extents in the reverse map to kernel IDs\"); 4.15 to 4.19.1 are vulnerable",
	Needs: prop.NeedRoot,
	Flag:  unix.CLONE_NEWUSER,
	Tags:  []string{"cve:CVE-2018-18955"},
	Premises: []prop.Premise{
		prop.Scratch,
		prop.NestedUserNS("namespace B, nested in the helper's namespace A"),
	},
	Check: nestedMapExtents,
})

// nestedMapExtents: namespace A maps 0..65535 to otherID.. on the host; B,
// nested in A, maps 0..5 to A's 0..5 in six extents, and its root creates a
// file the host stats. The control withholds A: B is then nested in the
// sandbox, whose ids are the host's, and its root is the sandbox's root.
func nestedMapExtents(t *prop.Trial) error {
	const extents = 6
	// B's root writes here, whoever it is on the host (the sandbox's root
	// in the control has no capability over a directory it does not map).
	dir, err := prop.ScratchDir("nscheck-extents-")
	if err != nil {
		return err
	}
	t.Defer(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		return fmt.Errorf("chmod the probe's directory: %w", err)
	}
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: otherID, Size: cveIDs}}
	s := helper.Spec{Action: "user.nested-extents", Args: extentsArgs{Extents: extents, Unmapped: cveIDs + 7, Dir: dir},
		Cloneflags: unix.CLONE_NEWUSER, UIDMappings: m, GIDMappings: m,
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}}
	if !t.Isolated {
		s.Credential = nil
	}
	var in extentsFacts
	if err := t.Run(s, &in); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(in.B.File, &st); err != nil {
		return fmt.Errorf("stat the file B's root created: %w", err)
	}
	overflow, err := readInt("/proc/sys/kernel/overflowuid")
	if err != nil {
		return err
	}
	t.Inside("B uid", in.B.UID)
	t.Inside("B uid_map", in.B.UIDMap)
	t.Inside("B: owner of / (stat)", in.B.RootUID)
	t.Inside("B: owner of the file it created", fmt.Sprintf("%d:%d", in.B.FileUID, in.B.FileGID))
	t.Inside(fmt.Sprintf("map with an extent for %d, unmapped in A", cveIDs+7), in.Unmapped)
	t.Host("owner of the file B's root created", fmt.Sprintf("%d:%d", st.Uid, st.Gid))
	t.Host("overflowuid", overflow)
	t.Expect(len(strings.Split(in.B.UIDMap, "\n")) == extents, "B's uid_map has not %d extents: %q", extents, in.B.UIDMap)
	t.Expect(in.B.UID == 0 && in.B.FileUID == 0, "inside B, getuid() is %d and its own file's owner %d, not 0: the reverse map does not hold B's root", in.B.UID, in.B.FileUID)
	t.Expect(st.Uid == otherID && st.Gid == otherID, "on the host, the file B's root created is owned by %d:%d, not %d:%d, what A maps B's root to", st.Uid, st.Gid, otherID, otherID)
	t.Expect(int(in.B.RootUID) == overflow, "inside B, / (the host's root's) is owned by %d, not the overflow uid %d: the host's root is mapped in B", in.B.RootUID, overflow)
	t.Expect(errname.Is(in.Unmapped, unix.EPERM), "a %d-extent map naming an id its parent does not map gave %s, want EPERM", extents+1, in.Unmapped)
	return nil
}

// chmodArgs asks a helper to chmod Path to Mode.
type chmodArgs struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

func init() {
	helper.Handle("user.chmod", func(a chmodArgs) (any, error) {
		return errname.Of(unix.Chmod(a.Path, a.Mode)), nil
	})
}

var _ = prop.Register(prop.Property{
	ID: "user.setgid-unmapped-group",
	Title: "root of a new user namespace that owns a file whose group it does not map cannot make the file setgid: chmod g+s clears S_ISGID. " +
		"CVE-2014-4014, fixed in Linux 3.16, 3.15.1 and 3.14.8 (\"fs,userns: Change inode_capable to capable_wrt_inode_uidgid\")",
	Needs:    prop.NeedRoot,
	Flag:     unix.CLONE_NEWUSER,
	Tags:     []string{"cve:CVE-2014-4014"},
	Premises: []prop.Premise{prop.Scratch, prop.Capability(unix.CAP_CHOWN, "giving the probe's file to the namespace's root and an unmapped group")},
	Check:    setgidUnmappedGroup,
})

// setgidUnmappedGroup: a file in a private directory of the host's, owned
// by the id root of the helper's namespace maps to and by a group nobody
// maps; the helper sets it 02755. The control withholds the namespace: the
// sandbox's root maps every group and keeps the bit.
func setgidUnmappedGroup(t *prop.Trial) error {
	dir, err := prop.ScratchDir("nscheck-setgid-")
	if err != nil {
		return err
	}
	t.Defer(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("chmod the probe's directory: %w", err)
	}
	path := filepath.Join(dir, "file")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("create the probe's file: %w", err)
	}
	const group = otherID + cveIDs // mapped nowhere, in no one's groups
	if err := os.Chown(path, otherID, group); err != nil {
		return fmt.Errorf("chown the probe's file: %w", err)
	}
	var outcome string
	s := helper.Spec{Action: "user.chmod", Args: chmodArgs{Path: path, Mode: 0o2755}, Cloneflags: unix.CLONE_NEWUSER,
		UIDMappings: mapping(0, otherID), GIDMappings: mapping(0, otherID),
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}}
	if !t.Isolated {
		s.Credential = nil
	}
	if err := t.Run(s, &outcome); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("stat the probe's file: %w", err)
	}
	t.Host("file owner", fmt.Sprintf("%d:%d", st.Uid, st.Gid))
	t.Inside("chmod 02755", outcome)
	t.Host("mode after", fmt.Sprintf("%#o", st.Mode&07777))
	t.Expect(outcome == errname.OK && st.Mode&0o777 == 0o755, "inside, the file's owner could not chmod it (%s, mode %#o)", outcome, st.Mode&07777)
	t.Expect(st.Mode&unix.S_ISGID == 0, "root of the user namespace made a file of the unmapped group %d setgid (mode %#o)", group, st.Mode&07777)
	return nil
}

var _ = prop.Register(prop.Property{
	ID: "user.clone-fs-refused",
	Title: "clone(CLONE_NEWUSER|CLONE_FS) fails with EINVAL: a process in a new user namespace must not share its root and cwd with one outside " +
		"(it could chroot them). CVE-2013-1858, fixed in Linux 3.9 (\"userns: Don't allow CLONE_NEWUSER | CLONE_FS\")",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Tags:  []string{"cve:CVE-2013-1858"},
	Check: cloneFSRefused,
})

// cloneFSRefused clones a helper with CLONE_FS besides the user namespace;
// the control withholds the namespace, and CLONE_FS alone is allowed. The
// helper never changes its root or cwd, so that a kernel that allows it
// shares nothing that changes.
func cloneFSRefused(t *prop.Trial) error {
	s := helper.Spec{Action: "user.probe", Args: probeArgs{}, Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_FS}
	s.UIDMappings, s.GIDMappings = helper.RootMapping()
	t.Flags(&s)
	// The refusal is the property, not a skip: not t.Run, which would
	// explain an EINVAL as a missing namespace type (the premises have
	// shown that CLONE_NEWUSER alone works).
	err := helper.Run(t.Context(), s, nil)
	if _, refused := helper.Refused(err); err != nil && !refused {
		return err
	}
	outcome := errname.Of(helper.Errno(err))
	if err == nil {
		outcome = errname.OK
	}
	flags := "CLONE_FS"
	if s.Cloneflags&unix.CLONE_NEWUSER != 0 {
		flags = "CLONE_NEWUSER|CLONE_FS"
	}
	t.Inside("clone "+flags, outcome)
	t.Expect(errname.Is(outcome, unix.EINVAL), "clone with %s gave %s, want EINVAL", flags, outcome)
	return nil
}

// chrootArgs asks a helper to chroot into Dir (when Chroot) and then to
// try to create a user namespace.
type chrootArgs struct {
	Dir    string `json:"dir"`
	Chroot bool   `json:"chroot"`
}

func init() {
	helper.Handle("user.chroot-userns", func(a chrootArgs) (any, error) {
		if a.Chroot {
			if err := unix.Chroot(a.Dir); err != nil {
				return nil, helper.Fail("chroot "+a.Dir, err)
			}
			if err := unix.Chdir("/"); err != nil {
				return nil, helper.Fail("chdir /", err)
			}
		}
		// A raw fork and clone: nothing to exec in an empty root.
		return errname.Of(forkchain.Try(unix.CLONE_NEWUSER, helper.DefaultTimeout)), nil
	})
}

var _ = prop.Register(prop.Property{
	ID: "user.chrooted-create-denied",
	Title: "a chrooted process cannot create a user namespace (EPERM): as root of it, it could chroot out. CVE-2013-1956, fixed in Linux 3.9 " +
		"(\"userns: Don't allow creation if the user is chrooted\")",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Tags:  []string{"cve:CVE-2013-1956"},
	Premises: []prop.Premise{
		prop.Scratch,
		prop.Capability(unix.CAP_SYS_CHROOT, "the helper's chroot"),
		prop.NestedUserNS("creating a user namespace from the helper's, rootless or in the control's sandbox"),
	},
	Check: chrootedCreateDenied,
})

// chrootedCreateDenied: the helper (in a mount namespace of its own, and a
// user namespace when rootless) chroots into an empty directory and tries
// CLONE_NEWUSER. The control withholds the chroot.
func chrootedCreateDenied(t *prop.Trial) error {
	dir, err := t.ScratchDir("nscheck-chroot-")
	if err != nil {
		return err
	}
	var outcome string
	a := chrootArgs{Dir: dir, Chroot: t.Isolated}
	if err := t.Run(helper.Spec{Action: "user.chroot-userns", Args: a, Cloneflags: unix.CLONE_NEWNS}, &outcome); err != nil {
		return err
	}
	t.Inside("chrooted", a.Chroot)
	t.Inside("clone(CLONE_NEWUSER)", outcome)
	t.Expect(errname.Is(outcome, unix.EPERM), "a chrooted process created a user namespace (%s, want EPERM)", outcome)
	return nil
}

// nonNamespacedSysctls are sysctls of the whole machine, present on every
// kernel: opened for writing, never written.
var nonNamespacedSysctls = []string{"kernel/panic", "fs/file-max", "vm/overcommit_memory"}

func init() {
	helper.Handle("user.sysctl-open", func(paths []string) (any, error) {
		out := map[string]string{}
		for _, p := range paths {
			fd, err := unix.Open("/proc/sys/"+p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd) // nothing written
			}
			out[p] = errname.Of(err)
		}
		return out, nil
	})
}

var _ = prop.Register(prop.Property{
	ID: "user.sysctl-nonns-readonly",
	Title: "root of a new user namespace (not the host's root) cannot open a sysctl of the whole machine for writing (kernel.panic, fs.file-max, " +
		"vm.overcommit_memory: EACCES); nothing is ever written",
	Needs:    prop.NeedRoot,
	Flag:     unix.CLONE_NEWUSER,
	Premises: []prop.Premise{prop.ProcSysWritable("opening sysctls for writing")},
	Check:    sysctlNonNSReadonly,
})

// sysctlNonNSReadonly: root of the helper's namespace is otherID on the
// host. The control withholds the namespace: the sandbox's root is the
// host's uid 0, for which the files are writable (and are closed unwritten).
func sysctlNonNSReadonly(t *prop.Trial) error {
	s := helper.Spec{Action: "user.sysctl-open", Args: nonNamespacedSysctls, Cloneflags: unix.CLONE_NEWUSER,
		UIDMappings: mapping(0, otherID), GIDMappings: mapping(0, otherID),
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}}
	if !t.Isolated {
		s.Credential = nil
	}
	out := map[string]string{}
	if err := t.Run(s, &out); err != nil {
		return err
	}
	tried := 0
	for _, p := range nonNamespacedSysctls {
		t.Inside("open /proc/sys/"+p+" O_WRONLY", out[p])
		if errname.Is(out[p], unix.ENOENT) {
			continue
		}
		if errname.Is(out[p], unix.EROFS) {
			// Checked before the permissions: nothing can be told.
			return prop.Unmet("/proc/sys is mounted read-only here (as container runtimes mount it): opening /proc/sys/"+p+" for writing fails with EROFS before its permissions are checked",
				"run nscheck where /proc/sys is writable (on the host, or a privileged container)")
		}
		tried++
		t.Expect(errname.Is(out[p], unix.EACCES), "root of a user namespace opened /proc/sys/%s for writing (%s, want EACCES)", p, out[p])
	}
	if tried == 0 {
		return prop.Unmet("none of "+strings.Join(nonNamespacedSysctls, ", ")+" exists under /proc/sys", "")
	}
	return nil
}

// gidMapArgs asks an unprivileged helper to create a user namespace, map
// its own uid and gid there itself, and write "deny" to its setgroups
// first when Deny.
type gidMapArgs struct {
	Deny bool `json:"deny"`
}

type gidMapFacts struct {
	// Clone is the refusal of the user namespace, if any.
	Clone     string `json:"clone,omitempty"`
	UIDMap    string `json:"uid_map,omitempty"`
	Setgroups string `json:"setgroups,omitempty"`
	GIDMap    string `json:"gid_map,omitempty"`
}

func init() {
	helper.Handle("user.gid-map-unprivileged", func(a gidMapArgs) (any, error) {
		var f gidMapFacts
		// No maps: this helper writes them itself, as an unprivileged
		// `unshare --user` would.
		p, err := helper.Start(context.Background(), helper.Spec{Action: "user.probe", Args: probeArgs{}, Cloneflags: unix.CLONE_NEWUSER, Hold: true})
		if p == nil {
			if _, refused := helper.Refused(err); !refused {
				return nil, err
			}
			f.Clone = err.Error()
			return f, nil
		}
		defer p.Release()
		if err != nil {
			return nil, err
		}
		write := func(file, text string) string {
			return errname.Of(os.WriteFile(fmt.Sprintf("/proc/%d/%s", p.PID(), file), []byte(text), 0))
		}
		f.UIDMap = write("uid_map", fmt.Sprintf("0 %d 1\n", os.Geteuid()))
		if a.Deny {
			f.Setgroups = write("setgroups", "deny")
		}
		f.GIDMap = write("gid_map", fmt.Sprintf("0 %d 1\n", os.Getegid()))
		return f, nil
	})
}

var _ = prop.Register(prop.Property{
	ID: "user.gid-map-needs-setgroups-deny",
	Title: "an unprivileged process cannot write the gid_map of a user namespace it created while setgroups is still allowed there (EPERM): " +
		"root of it could otherwise drop supplementary groups that deny access. CVE-2014-8989, fixed in Linux 3.19 (\"userns: Add a knob to " +
		"disable setgroups on a per user namespace basis\", \"userns: Allow setting gid_maps without privilege when setgroups is disabled\")",
	Needs:    prop.NeedRoot,
	Flag:     unix.CLONE_NEWUSER,
	Tags:     []string{"cve:CVE-2014-8989"},
	Premises: []prop.Premise{prop.Capability(unix.CAP_SETUID, "starting a helper as uid 65534"), prop.Capability(unix.CAP_SETGID, "starting a helper as gid 65534"), userNSPolicy},
	Check:    gidMapNeedsDeny,
})

// gidMapNeedsDeny: uid 65534 creates a user namespace and maps its ids
// itself. The control withholds the refusal's cause: "deny" is written
// first, and the same gid_map is taken.
func gidMapNeedsDeny(t *prop.Trial) error {
	var f gidMapFacts
	err := t.Run(helper.Spec{
		Action: "user.gid-map-unprivileged", Args: gidMapArgs{Deny: !t.Isolated},
		Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged, NoSetGroups: t.Sandboxed},
	}, &f)
	if err != nil {
		return err
	}
	if f.Clone != "" {
		t.Inside("clone", f.Clone)
		if knob := readKnobs(t); knob != "" {
			return prop.Unmet(fmt.Sprintf("uid %d cannot create a user namespace here (%s)", unprivileged, f.Clone), knob)
		}
		return prop.Unmet(fmt.Sprintf("uid %d cannot create a user namespace here (%s), and no sysctl disables them: a seccomp filter (%s) or an LSM denies it", unprivileged, f.Clone, seccompMode()),
			"see `nscheck env`")
	}
	t.Inside("uid_map 0 65534 1", f.UIDMap)
	t.Inside("setgroups deny written first", !t.Isolated)
	t.Inside("gid_map 0 65534 1", f.GIDMap)
	t.Expect(f.UIDMap == errname.OK, "uid %d could not map its own uid in the user namespace it created: %s", unprivileged, f.UIDMap)
	t.Expect(errname.Is(f.GIDMap, unix.EPERM), "uid %d wrote the gid_map of its user namespace with setgroups allowed (%s, want EPERM)", unprivileged, f.GIDMap)
	return nil
}
