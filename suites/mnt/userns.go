package mnt

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/prop"
)

// Propagation and locking across a user namespace boundary
// (mount_namespaces(7)). A mount namespace created together with a new user
// namespace is "less privileged" than its parent: the copies it gets of the
// parent's shared mounts are slaves (events of the parent still propagate
// in, nothing mounted inside propagates out), and the mounts it inherits
// are locked together (MNT_LOCKED): a locked submount cannot be unmounted,
// with or without MNT_DETACH, nor moved, nor bind-mounted without the
// mounts above it (a bind without MS_REC); the flags of each are locked
// too (mnt.locked-flags). Every one of these runs in a lab: the shared
// mounts are the lab's own, in a mount namespace that is thrown away.
//
// The control withholds the inner helper's user namespace (its mount
// namespace is then an ordinary copy: peers stay shared, nothing is
// locked), or, where the property is about the parent's events reaching
// the child, the lab's shared propagation.

// A step is one operation of an inner helper, on paths relative to the
// lab (Path, Target); its outcome is recorded under its name.
type step struct {
	// Op is "propagation" (record the propagation of the lab's copy),
	// "make-shared" (of the lab's copy), "mount" (a tmpfs at Path),
	// "umount", "umount-detach", "bind", "rbind" or "move".
	Op     string `json:"op"`
	Path   string `json:"path,omitempty"`
	Target string `json:"target,omitempty"`
}

func (s step) name() string {
	n := s.Op
	if s.Path != "" {
		n += " " + s.Path
	}
	if s.Target != "" {
		n += " -> " + s.Target
	}
	return n
}

// runSteps is the inner helper's side: each step's outcome, an errno name
// (the propagation of the lab's copy for "propagation").
func runSteps(dir string, steps []step) (map[string]string, error) {
	out := map[string]string{}
	path := func(n string) string { return filepath.Join(dir, n) }
	for _, s := range steps {
		var err error
		switch s.Op {
		case "propagation":
			m, err := mountAt(0, dir)
			if err != nil {
				return nil, err
			}
			out[s.name()] = propagation(m)
			continue
		case "make-shared":
			err = unix.Mount("", dir, "", unix.MS_SHARED, "")
		case "mount":
			err = unix.Mount("tmpfs", path(s.Path), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m")
		case "umount":
			err = unix.Unmount(path(s.Path), 0)
		case "umount-detach":
			err = unix.Unmount(path(s.Path), unix.MNT_DETACH)
		case "bind":
			err = unix.Mount(path(s.Path), path(s.Target), "", unix.MS_BIND, "")
		case "rbind":
			err = unix.Mount(path(s.Path), path(s.Target), "", unix.MS_BIND|unix.MS_REC, "")
		case "move":
			err = unix.Mount(path(s.Path), path(s.Target), "", unix.MS_MOVE, "")
		default:
			return nil, &unknownStep{s.Op}
		}
		out[s.name()] = errString(err)
	}
	return out, nil
}

type unknownStep struct{ op string }

func (e *unknownStep) Error() string { return "mnt: unknown inner step " + e.op }

func init() {
	handleLab("mnt.lab.userns-out", func(l *lab) error { return labUsernsPropagation(l, false, false) })
	handleLab("mnt.lab.userns-reshare", func(l *lab) error { return labUsernsPropagation(l, false, true) })
	handleLab("mnt.lab.userns-in", func(l *lab) error { return labUsernsPropagation(l, true, false) })
	handleLab("mnt.lab.userns-locked", labUsernsLocked)
	handleLab("mnt.lab.shared-umount", labSharedUmount)
	handleLab("mnt.lab.rbind-unbindable", labRbindUnbindable)
}

const userMnt = unix.CLONE_NEWUSER | unix.CLONE_NEWNS

// usernsPremises are what an inner helper in a user+mount namespace of its
// own needs: the lab's namespaces and, rootless, a user namespace nested
// in the lab's.
func usernsPremises(p prop.Property) prop.Property {
	return withPremises(p,
		prop.Creates(userMnt, "the inner helper's user+mount namespace"),
		prop.NestedUserNS("the inner helper's user namespace, inside the lab's when rootless"))
}

// labUsernsPropagation: the lab's tmpfs is shared; an inner helper in a new
// user+mount namespace mounts "from-inside" and waits at a gate; the lab
// looks, mounts "from-parent" and lets the helper look. Outward (inward
// false), the control withholds the inner user namespace; inward, it keeps
// it and leaves the lab's tmpfs private instead. With reshare, the helper
// first makes its copy shared again, then mounts.
func labUsernsPropagation(l *lab, inward, reshare bool) error {
	flags := uintptr(userMnt)
	if !inward {
		flags = l.innerFlags(userMnt, unix.CLONE_NEWUSER)
	}
	if !inward || l.Isolated {
		if err := l.propagate("", unix.MS_SHARED); err != nil {
			return err
		}
	}
	if err := l.mkdir("from-inside"); err != nil {
		return err
	}
	a := innerArgs{Keep: true, Mount: "from-inside", Steps: []step{{Op: "propagation"}}, Look: []string{"from-inside", "from-parent"}}
	if reshare {
		a.Mount = ""
		a.Steps = []step{{Op: "make-shared"}, {Op: "mount", Path: "from-inside"}, {Op: "propagation"}}
	}
	p, err := l.startGated(a, flags)
	if err != nil {
		return err
	}
	l.facts.SeesBefore = map[string]bool{}
	if err := l.look(l.facts.SeesBefore, "from-inside"); err != nil {
		p.Close()
		return err
	}
	if err := l.mount("from-parent", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		p.Close()
		return err
	}
	return l.proceed(p, "from-inside", "from-parent")
}

var _ = prop.Register(usernsPremises(labProperty("mnt.userns-propagation-slave",
	"a mount namespace created with a new user namespace gets the parent's shared mounts as slaves: a mount made inside does not propagate out "+
		"to the parent (mount_namespaces(7), a disposable lab as the parent)",
	prop.NeedUserns, "mnt.lab.userns-out", func(t *prop.Trial, r *labRun) {
		copyProp := r.Inner.Steps["propagation"]
		t.Expect(r.Inner.Sees["from-inside"], "inside, its own mount is not in its mountinfo")
		t.Expect(strings.Contains(copyProp, "master:") && !strings.Contains(copyProp, "shared:"),
			"inside, the copy of the parent's shared mount is %q, not a slave (the parent's: %s)", copyProp, r.Propagation["."])
		t.Expect(!r.SeesBefore["from-inside"] && !r.Sees["from-inside"], "a mount made inside the user+mount namespace propagated out to the parent's shared mount")
		t.Expect(!r.HostSees["from-inside"], "/proc/<lab>/mountinfo lists the mount made inside the user+mount namespace")
	})))

var _ = prop.Register(usernsPremises(labProperty("mnt.userns-reshare-no-leak",
	"inside a mount namespace created with a new user namespace, making the slave copy of a parent's shared mount shared again starts a peer "+
		"group of its own: a mount made then still does not propagate out to the parent (a disposable lab as the parent)",
	prop.NeedUserns, "mnt.lab.userns-reshare", func(t *prop.Trial, r *labRun) {
		copyProp := r.Inner.Steps["propagation"]
		t.Expect(r.Inner.Steps["make-shared"] == errname.OK && r.Inner.Steps["mount from-inside"] == errname.OK,
			"inside, make-shared gave %s and the mount %s", r.Inner.Steps["make-shared"], r.Inner.Steps["mount from-inside"])
		t.Expect(strings.Contains(copyProp, "master:") && copyProp != r.Propagation["."],
			"inside, the re-shared copy is %q: it joined the parent's peer group (the parent's: %s) instead of staying its slave", copyProp, r.Propagation["."])
		t.Expect(!r.SeesBefore["from-inside"] && !r.Sees["from-inside"] && !r.HostSees["from-inside"],
			"a mount made inside, on the re-shared copy, propagated out to the parent's shared mount")
	})))

var _ = prop.Register(usernsPremises(labProperty("mnt.userns-propagation-in",
	"a mount the parent makes on its shared mount after a mount namespace was created with a new user namespace appears inside "+
		"(the slave still receives; mount_namespaces(7), a disposable lab as the parent)",
	prop.NeedUserns, "mnt.lab.userns-in", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Sees["from-parent"], "the lab's own mount is not in its mountinfo")
		t.Expect(r.Inner.Sees["from-parent"], "the parent's later mount did not propagate into the user+mount namespace (its copy: %s)", r.Inner.Steps["propagation"])
		t.Expect(r.InnerTable["from-parent"], "/proc/<helper>/mountinfo lacks the parent's later mount")
	})))

// labUsernsLocked: the lab mounts "top" with two submounts; an inner helper
// in a new user+mount namespace (the control: a mount namespace only) tries
// to take them apart: bind "top" without MS_REC, then with it, move one
// submount, unmount the other, plainly and detached.
func labUsernsLocked(l *lab) error {
	for _, n := range []string{"top", "top/sub", "top/sub2"} {
		if err := l.mount(n, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
			return err
		}
	}
	if err := l.mkdir("dst", "dst2", "dst3"); err != nil {
		return err
	}
	a := innerArgs{
		Steps: []step{
			{Op: "bind", Path: "top", Target: "dst"},
			{Op: "rbind", Path: "top", Target: "dst2"},
			{Op: "move", Path: "top/sub2", Target: "dst3"},
			{Op: "umount", Path: "top/sub"},
			{Op: "umount-detach", Path: "top/sub"},
		},
		Look: []string{"top/sub", "top/sub2", "dst", "dst2", "dst2/sub", "dst3"},
	}
	p, err := l.start(a, l.innerFlags(userMnt, unix.CLONE_NEWUSER))
	if err != nil {
		return err
	}
	return l.finish(p, "top/sub", "top/sub2")
}

var _ = prop.Register(usernsPremises(withTags(labProperty("mnt.userns-mounts-locked",
	"inside a new user+mount namespace, a submount inherited from the parent is locked to the mount above it: umount2 fails with EINVAL, "+
		"with MNT_DETACH too (CVE-2014-9717: before Linux 4.0.2/4.1 MNT_DETACH ignored MNT_LOCKED and revealed what the mount covers; "+
		"fixed by \"mnt: Honor MNT_LOCKED when detaching mounts\")",
	prop.NeedUserns, "mnt.lab.userns-locked", func(t *prop.Trial, r *labRun) {
		plain, detach := r.Inner.Steps["umount top/sub"], r.Inner.Steps["umount-detach top/sub"]
		t.Expect(errname.Is(plain, unix.EINVAL), "inside, unmounting the inherited submount gave %s, want EINVAL (locked)", plain)
		t.Expect(errname.Is(detach, unix.EINVAL), "inside, unmounting the inherited submount with MNT_DETACH gave %s, want EINVAL (locked)", detach)
		t.Expect(r.Inner.Sees["top/sub"], "inside, the inherited submount is gone")
		t.Expect(r.Sees["top/sub"], "the lab lost its own submount")
	}), "cve:CVE-2014-9717")))

var _ = prop.Register(usernsPremises(labProperty("mnt.userns-bind-locked-nonrec",
	"inside a new user+mount namespace, bind-mounting an inherited mount that has locked submounts fails without MS_REC (EINVAL: it would reveal "+
		"what they cover) and works with it, the submounts coming along",
	prop.NeedUserns, "mnt.lab.userns-locked", func(t *prop.Trial, r *labRun) {
		bind, rbind := r.Inner.Steps["bind top -> dst"], r.Inner.Steps["rbind top -> dst2"]
		t.Expect(errname.Is(bind, unix.EINVAL), "inside, a non-recursive bind of the inherited mount with locked submounts gave %s, want EINVAL", bind)
		t.Expect(!r.Inner.Sees["dst"], "inside, the non-recursive bind of a locked tree exists")
		t.Expect(rbind == errname.OK, "inside, the recursive bind of the inherited tree gave %s", rbind)
		t.Expect(r.Inner.Sees["dst2/sub"], "inside, the recursive bind lacks the locked submount")
	})))

var _ = prop.Register(usernsPremises(labProperty("mnt.userns-move-locked",
	"inside a new user+mount namespace, a submount inherited from the parent cannot be moved away (MS_MOVE fails with EINVAL)",
	prop.NeedUserns, "mnt.lab.userns-locked", func(t *prop.Trial, r *labRun) {
		move := r.Inner.Steps["move top/sub2 -> dst3"]
		t.Expect(errname.Is(move, unix.EINVAL), "inside, moving the inherited submount gave %s, want EINVAL (locked)", move)
		t.Expect(r.Inner.Sees["top/sub2"] && !r.Inner.Sees["dst3"], "inside, the inherited submount moved (at its place: %v, at the target: %v)", r.Inner.Sees["top/sub2"], r.Inner.Sees["dst3"])
	})))

// withTags adds tags to a property.
func withTags(p prop.Property, tags ...string) prop.Property {
	p.Tags = append(p.Tags, tags...)
	return p
}

// labSharedUmount: the lab makes its tmpfs shared (the control: leaves it
// private) and mounts "m"; a helper in a new mount namespace, whose copies
// are peers, unmounts its "m".
func labSharedUmount(l *lab) error {
	if l.Isolated {
		if err := l.propagate("", unix.MS_SHARED); err != nil {
			return err
		}
	}
	if err := l.mount("m", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	p, err := l.start(innerArgs{Keep: true, Umount: "m", Look: []string{"m"}}, unix.CLONE_NEWNS)
	if err != nil {
		return err
	}
	return l.finish(p, "m")
}

var _ = prop.Register(labProperty("mnt.shared-umount-propagates",
	"on a shared mount, an unmount inside a new mount namespace propagates to its peer outside (a disposable lab host)",
	prop.NeedUserns, "mnt.lab.shared-umount", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Inner.Umount == errname.OK && !r.Inner.Sees["m"], "inside, unmounting the peer's copy did not take (umount: %s)", r.Inner.Umount)
		t.Expect(!r.Sees["m"], "the unmount inside did not propagate to its shared peer (propagation of the lab: %s)", r.Propagation["."])
		t.Expect(!r.HostSees["m"], "/proc/<lab>/mountinfo still lists the mount unmounted in its peer")
	}))

// labRbindUnbindable: the lab mounts "src" and "src/sub", makes the
// submount unbindable (the control: leaves it private), and bind-mounts
// "src" recursively onto "dst".
func labRbindUnbindable(l *lab) error {
	for _, n := range []string{"src", "src/sub"} {
		if err := l.mount(n, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
			return err
		}
	}
	if l.Isolated {
		if err := l.propagate("src/sub", unix.MS_UNBINDABLE); err != nil {
			return err
		}
	}
	if err := l.mkdir("dst"); err != nil {
		return err
	}
	l.facts.Bind = errString(unix.Mount(l.path("src"), l.path("dst"), "", unix.MS_BIND|unix.MS_REC, ""))
	return l.look(l.facts.Sees, "src/sub", "dst", "dst/sub")
}

var _ = prop.Register(labProperty("mnt.rbind-prunes-unbindable",
	"a recursive bind mount leaves out the unbindable submounts of the tree it copies (mount_namespaces(7); in a disposable lab)",
	prop.NeedUserns, "mnt.lab.rbind-unbindable", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Propagation["src/sub"] == "unbindable", "the submount is %q, not unbindable", r.Propagation["src/sub"])
		t.Expect(r.Bind == errname.OK && r.Sees["dst"], "the recursive bind of the tree gave %s", r.Bind)
		t.Expect(!r.Sees["dst/sub"] && !r.HostSees["dst/sub"], "the recursive bind copied the unbindable submount")
	}))
