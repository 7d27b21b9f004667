// Package user holds the user namespace properties: ids and capabilities
// inside a new user namespace are its own, mapped to outside ids through
// uid_map and gid_map that are written once, and powerless over what the
// namespace does not own. cve.go holds the regression probes of known
// kernel bugs there (labelled cve:CVE-YYYY-NNNN).
//
// The flag under test is CLONE_NEWUSER, which every check asks for
// explicitly (with its maps). The control withholds it, maps and all: the
// helpers then run as root of the control's sandbox, itself a user namespace
// (mapping every id as root, or the caller's own id when rootless), which
// plays the host.
package user

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/idmap"
	"github.com/nscheck/nscheck/prop"
)

var _ = prop.Register(prop.Property{
	ID:    "user.root-mapped",
	Title: "uid and gid 0 inside a new user namespace are the configured outside ids: the host's /proc/<pid>/status and uid_map show them",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Check: rootMapped,
})

var _ = prop.Register(prop.Property{
	ID:    "user.unmapped-overflow",
	Title: "ids without a mapping appear inside as the overflow ids (/proc/sys/kernel/overflowuid, overflowgid)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Check: unmappedOverflow,
})

var _ = prop.Register(prop.Property{
	ID:    "user.caps-inside-only",
	Title: "root of a new user namespace holds every capability, yet sethostname in the host's UTS namespace fails with EPERM",
	Needs: prop.NeedUserns,
	// The sandbox gets a UTS namespace of its own too, owned by its user
	// namespace, so that it owns its hostname as the host's root does;
	// the helper never asks for CLONE_NEWUTS.
	Flag:  unix.CLONE_NEWUSER | unix.CLONE_NEWUTS,
	Check: capsInsideOnly,
})

var _ = prop.Register(prop.Property{
	ID:    "user.map-write-once",
	Title: "uid_map of a new user namespace takes one write; a second fails with EPERM",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Check: mapWriteOnce,
})

var _ = prop.Register(prop.Property{
	ID:       "user.setgroups-deny-sticky",
	Title:    `once "deny" is written to /proc/<pid>/setgroups, writing "allow" fails with EPERM`,
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWUSER,
	Premises: []prop.Premise{setgroupsAllowed},
	Check:    setgroupsDenySticky,
})

var _ = prop.Register(prop.Property{
	ID:       "user.file-owner-mapped",
	Title:    "a file created by root inside a new user namespace is owned on the host by the outside uid and gid root maps to",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWUSER,
	Premises: []prop.Premise{prop.Scratch, prop.Capability(unix.CAP_CHOWN, "giving a file to an unmapped owner").AsRoot()},
	Check:    fileOwnerMapped,
})

var _ = prop.Register(prop.Property{
	ID:    "user.caps-dropped-on-exec",
	Title: "a process with a non-zero uid inside a new user namespace has no capabilities after execve; root's execve keeps them",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUSER,
	Check: capsDroppedOnExec,
})

var _ = prop.Register(prop.DistinctNS("user", prop.NeedUserns))

// expectMapped checks that an id which is inside (0) in the helper's
// namespace is outside on the host, and, when the two differ, that the host
// does not see the inside id: root inside must not be root outside.
func expectMapped(t *prop.Trial, what string, inside, seen, outside uint32) {
	t.Expect(seen == outside, "the host sees %s %d, not the outside id %d that 0 inside maps to", what, seen, outside)
	if outside != inside {
		t.Expect(seen != inside, "the host sees %s %d, the same as inside: no mapping applies", what, seen)
	}
}

func rootMapped(t *prop.Trial) error {
	rm, err := rootMap()
	if err != nil {
		return err
	}
	uid, gid := rm.uid, rm.gid
	p, err := startProbe(t, "", probeArgs{}, rm)
	if err != nil {
		return err
	}
	m, err := idmap.Read(p.PID(), "uid")
	if err != nil {
		return err
	}
	viaMap, mapped := m.ToOutside(0)
	t.Host("outside uid", uid)
	t.Host("outside gid", gid)
	t.Host(fmt.Sprintf("/proc/%d/uid_map", p.PID()), m.String())
	t.Expect(p.in.UID == 0 && p.in.GID == 0, "inside, the helper runs as uid %d gid %d, not root", p.in.UID, p.in.GID)
	expectMapped(t, "uid", 0, uint32(p.status.UIDs[1]), uid)
	expectMapped(t, "gid", 0, uint32(p.status.GIDs[1]), gid)
	t.Expect(mapped && viaMap == uid, "the host reads uid_map %q: 0 inside is not %d outside", m.String(), uid)
	return nil
}

func unmappedOverflow(t *prop.Trial) error {
	overflowUID, err := readInt("/proc/sys/kernel/overflowuid")
	if err != nil {
		return err
	}
	overflowGID, err := readInt("/proc/sys/kernel/overflowgid")
	if err != nil {
		return err
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	// No maps at all: every id, the helper's own included, is unmapped.
	p, err := startProbe(t, "", probeArgs{}, nil)
	if err != nil {
		return err
	}
	t.Inside("owner of /", fmt.Sprintf("%d:%d", p.in.RootUID, p.in.RootGID))
	t.Host("owner of /", fmt.Sprintf("%d:%d", root.Uid, root.Gid))
	t.Host("overflowuid:overflowgid", fmt.Sprintf("%d:%d", overflowUID, overflowGID))
	t.Expect(p.in.UID == overflowUID && p.in.GID == overflowGID,
		"inside, the helper's own unmapped ids read %d:%d, not the overflow ids %d:%d", p.in.UID, p.in.GID, overflowUID, overflowGID)
	// "/" tells only when the host sees a real owner, not its own overflow.
	if int(root.Uid) != overflowUID {
		t.Expect(int(p.in.RootUID) == overflowUID, "inside, / (uid %d on the host) is owned by uid %d, not the overflow uid %d", root.Uid, p.in.RootUID, overflowUID)
	}
	if int(root.Gid) != overflowGID {
		t.Expect(int(p.in.RootGID) == overflowGID, "inside, / (gid %d on the host) has gid %d, not the overflow gid %d", root.Gid, p.in.RootGID, overflowGID)
	}
	return nil
}

func capsInsideOnly(t *prop.Trial) error {
	full, err := fullCaps()
	if err != nil {
		return err
	}
	rm, err := rootMap()
	if err != nil {
		return err
	}
	before, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	// A user namespace, and no UTS namespace: the helper's UTS namespace
	// is the host's, owned by the host's user namespace.
	p, err := startProbe(t, "", probeArgs{SetHostname: true}, rm)
	if err != nil {
		return err
	}
	after, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	t.Inside("CapEff", fmt.Sprintf("%#x", p.in.CapEff))
	t.Inside("sethostname(own name)", p.in.SetHostname)
	t.Host(fmt.Sprintf("/proc/%d/status CapEff", p.PID()), fmt.Sprintf("%#x", p.status.CapEff))
	t.Host("full capability set", fmt.Sprintf("%#x", full))
	t.Host("hostname before", before)
	t.Host("hostname after", after)
	t.Expect(p.in.CapEff == full && p.status.CapEff == full, "root inside does not hold every capability (CapEff %#x, host sees %#x, full %#x)", p.in.CapEff, p.status.CapEff, full)
	t.Expect(p.in.SetErrno == int(unix.EPERM), "sethostname in the host's UTS namespace did not fail with EPERM: %s", p.in.SetHostname)
	t.Expect(after == before, "the host's hostname changed from %q to %q", before, after)
	return nil
}

func mapWriteOnce(t *prop.Trial) error {
	uid := uint32(os.Geteuid())
	p, err := startProbe(t, "", probeArgs{}, nil)
	if err != nil {
		return err
	}
	m := idmap.Map{{Inside: 0, Outside: uid, Count: 1}}
	first := idmap.Write(p.PID(), "uid", m)
	second := idmap.Write(p.PID(), "uid", m)
	final, err := idmap.Read(p.PID(), "uid")
	if err != nil {
		return err
	}
	t.Host("first write "+m.String(), errText(first))
	t.Host("second write "+m.String(), errText(second))
	t.Host("uid_map after", final.String())
	// The first write must succeed, or the second's EPERM proves nothing.
	t.Expect(p.in.UIDMap == "", "the helper's uid_map was already written when it started: %q", p.in.UIDMap)
	t.Expect(first == nil, "the first write to a fresh uid_map failed: %v", first)
	t.Expect(errors.Is(second, unix.EPERM), "a second write to uid_map did not fail with EPERM: %s", errText(second))
	t.Expect(final.String() == m.String(), "uid_map reads %q after the writes, not the first write's %q", final.String(), m.String())
	return nil
}

// setgroupsAllowed is the premise of setgroups-deny-sticky: nscheck's own
// user namespace has setgroups allowed, or no nested one can start with
// "allow".
var setgroupsAllowed = prop.Premise{Key: "setgroups-allowed", Why: "a fresh user namespace whose setgroups reads allow", Probe: func(context.Context) error {
	if own, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(own)) == "deny" {
		return prop.Unmet("this process's user namespace has setgroups denied (its creator wrote \"deny\", as unshare --map-root-user does) and nested user namespaces inherit the denial",
			"run nscheck as root of the host or as a plain user")
	}
	return nil
}}

func setgroupsDenySticky(t *prop.Trial) error {
	p, err := startProbe(t, "", probeArgs{}, nil)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/proc/%d/setgroups", p.PID())
	deny := os.WriteFile(path, []byte("deny"), 0)
	allow := os.WriteFile(path, []byte("allow"), 0)
	final, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	t.Inside("setgroups", p.in.Groups)
	t.Host("write deny", errText(deny))
	t.Host("write allow", errText(allow))
	t.Host(path, string(final))
	// "deny" must be taken (it is, before gid_map is written), or the
	// refusal of "allow" proves nothing.
	t.Expect(p.in.Groups == "allow", "the helper's setgroups starts as %q, not allow", p.in.Groups)
	t.Expect(deny == nil, `writing "deny" to a fresh setgroups failed: %v`, deny)
	t.Expect(errors.Is(allow, unix.EPERM), `writing "allow" after "deny" did not fail with EPERM: %s`, errText(allow))
	t.Expect(string(final) == "deny\n", "setgroups reads %q after the writes, not deny", final)
	return nil
}

func fileOwnerMapped(t *prop.Trial) error {
	rm, err := rootMap()
	if err != nil {
		return err
	}
	uid, gid := rm.uid, rm.gid
	dir, err := prop.ScratchDir("nscheck-user-")
	if err != nil {
		return err
	}
	t.Defer(func() { _ = os.RemoveAll(dir) })
	// Root inside writes as the outside uid: give it the directory.
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	p, err := startProbe(t, "", probeArgs{CreateIn: dir}, rm)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "created-inside"), &st); err != nil {
		return fmt.Errorf("stat the file the helper created: %w", err)
	}
	t.Inside("owner of "+p.in.File, fmt.Sprintf("%d:%d", p.in.FileUID, p.in.FileGID))
	t.Host("owner of "+p.in.File, fmt.Sprintf("%d:%d", st.Uid, st.Gid))
	t.Host("outside uid:gid", fmt.Sprintf("%d:%d", uid, gid))
	t.Expect(p.in.FileUID == 0 && p.in.FileGID == 0, "inside, root's new file is owned by %d:%d, not 0:0", p.in.FileUID, p.in.FileGID)
	expectMapped(t, "the file's uid", 0, st.Uid, uid)
	expectMapped(t, "the file's gid", 0, st.Gid, gid)
	return nil
}

// nonRoot is the uid and gid inside that caps-dropped-on-exec maps.
const nonRoot = 1000

func capsDroppedOnExec(t *prop.Trial) error {
	full, err := fullCaps()
	if err != nil {
		return err
	}
	// The observer's own ids map to uid 1000 inside: the helper is uid
	// 1000 from clone on, and as the first process of its user namespace
	// holds every capability in it until its execve of the helper
	// recomputes them from its uid.
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	p, err := startProbe(t, "uid 1000: ", probeArgs{}, &idMap{inside: nonRoot, uid: uid, gid: gid})
	if err != nil {
		return err
	}
	if err := p.Release(); err != nil {
		return err
	}
	// The reference: the same clone and execve as root inside.
	ref, err := startProbe(t, "uid 0: ", probeArgs{}, &idMap{inside: 0, uid: uid, gid: gid})
	if err != nil {
		return err
	}
	t.Inside("uid 1000: CapEff", fmt.Sprintf("%#x", p.in.CapEff))
	t.Inside("uid 1000: CapPrm", fmt.Sprintf("%#x", p.in.CapPrm))
	t.Inside("uid 0: CapEff", fmt.Sprintf("%#x", ref.in.CapEff))
	t.Host("uid 1000: CapEff", fmt.Sprintf("%#x", p.status.CapEff))
	t.Host("uid 0: CapEff", fmt.Sprintf("%#x", ref.status.CapEff))
	t.Expect(p.in.UID == nonRoot, "inside, the helper runs as uid %d, not %d", p.in.UID, nonRoot)
	t.Expect(p.in.CapEff == 0 && p.in.CapPrm == 0 && p.status.CapEff == 0,
		"uid %d kept capabilities across execve (CapEff %#x CapPrm %#x, host sees CapEff %#x)", nonRoot, p.in.CapEff, p.in.CapPrm, p.status.CapEff)
	t.Expect(ref.in.CapEff == full, "root inside lacks capabilities after the same execve (CapEff %#x, full %#x): the check cannot tell", ref.in.CapEff, full)
	return nil
}
