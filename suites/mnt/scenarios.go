package mnt

import (
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/prop"
)

// The lab scenarios (lab.go): each is a helper action run by the lab, and a
// property judging what the lab reported.

func init() {
	handleLab("mnt.lab.umount", labUmount)
	handleLab("mnt.lab.late-mount", labLateMount)
	handleLab("mnt.lab.shared", labShared)
	handleLab("mnt.lab.slave", labSlave)
	handleLab("mnt.lab.locked", labLocked)
	handleLab("mnt.lab.unbindable", labUnbindable)
}

// labUmount: the lab mounts "m"; a helper in a new mount namespace (the
// control: in the lab's) unmounts its copy.
func labUmount(l *lab) error {
	if err := l.mount("m", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	p, err := l.start(innerArgs{Umount: "m", Look: []string{"m"}}, l.innerFlags(unix.CLONE_NEWNS, unix.CLONE_NEWNS))
	if err != nil {
		return err
	}
	return l.finish(p, "m")
}

var _ = prop.Register(labProperty("mnt.umount-no-leak",
	"unmounting a host-inherited mount inside a new mount namespace leaves it mounted on the host (a disposable lab host)",
	prop.NeedUserns, "mnt.lab.umount", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Inner.Umount == errname.OK && !r.Inner.Sees["m"], "inside, unmounting the inherited mount did not take (umount: %s, still mounted: %v)", r.Inner.Umount, r.Inner.Sees["m"])
		t.Expect(!r.InnerTable["m"], "the lab still sees the mount in the helper's /proc/<pid>/mountinfo after the helper unmounted it")
		t.Expect(r.Sees["m"], "the umount inside removed the host's mount (the lab no longer has it)")
		t.Expect(r.HostSees["m"], "/proc/<lab>/mountinfo no longer lists the host's mount")
	}))

// labLateMount: a helper in a new mount namespace makes its mounts private
// (the control: keeps the lab's mounts shared with it) and waits at a gate;
// then the lab mounts "late" and lets it look.
func labLateMount(l *lab) error {
	if !l.Isolated {
		if err := l.propagate("", unix.MS_SHARED); err != nil {
			return err
		}
	}
	p, err := l.startGated(innerArgs{Keep: !l.Isolated, Look: []string{"late"}}, unix.CLONE_NEWNS)
	if err != nil {
		return err
	}
	if err := l.mount("late", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		p.Close()
		return err
	}
	return l.proceed(p, "late")
}

var _ = prop.Register(labProperty("mnt.host-mount-hidden",
	"with private propagation, a mount the host makes after the namespace exists does not appear inside (a disposable lab host)",
	prop.NeedRoot, "mnt.lab.late-mount", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Sees["late"] && r.HostSees["late"], "the lab's own later mount is not in its mountinfo")
		t.Expect(!r.Inner.Sees["late"], "the host's later mount appeared inside (propagation of the lab: %s)", r.Propagation["."])
		t.Expect(!r.InnerTable["late"], "/proc/<helper>/mountinfo lists the host's later mount")
	}))

// labShared: the lab makes its tmpfs shared (the control: leaves it
// private); a helper in a new mount namespace, its copy a peer, mounts "sub".
func labShared(l *lab) error {
	if l.Isolated {
		if err := l.propagate("", unix.MS_SHARED); err != nil {
			return err
		}
	}
	if err := l.mkdir("sub"); err != nil {
		return err
	}
	p, err := l.start(innerArgs{Keep: true, Mount: "sub", Look: []string{"sub"}}, unix.CLONE_NEWNS)
	if err != nil {
		return err
	}
	return l.finish(p, "sub")
}

var _ = prop.Register(labProperty("mnt.shared-propagates",
	"on a shared mount, a mount made inside a new mount namespace appears in its peer outside (a disposable lab host)",
	prop.NeedRoot, "mnt.lab.shared", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Inner.Sees["sub"], "inside, its own mount is not in its mountinfo")
		t.Expect(r.Sees["sub"], "the mount inside did not propagate to its shared peer (propagation of the lab: %s)", r.Propagation["."])
		t.Expect(r.HostSees["sub"], "/proc/<lab>/mountinfo does not list the propagated mount")
	}))

// labSlave: the lab makes its tmpfs shared; a helper in a new mount
// namespace makes its copy a slave (the control: leaves it a shared peer),
// mounts "from-slave" and waits at a gate; the lab checks it, mounts
// "from-master" and lets the helper look.
func labSlave(l *lab) error {
	if err := l.propagate("", unix.MS_SHARED); err != nil {
		return err
	}
	if err := l.mkdir("from-slave"); err != nil {
		return err
	}
	a := innerArgs{Keep: true, Slave: l.Isolated, Mount: "from-slave", Look: []string{"from-slave", "from-master"}}
	p, err := l.startGated(a, unix.CLONE_NEWNS)
	if err != nil {
		return err
	}
	l.facts.SeesBefore = map[string]bool{}
	if err := l.look(l.facts.SeesBefore, "from-slave"); err != nil {
		p.Close()
		return err
	}
	if err := l.mount("from-master", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		p.Close()
		return err
	}
	return l.proceed(p, "from-slave", "from-master")
}

var _ = prop.Register(labProperty("mnt.slave-one-way",
	"on a slave mount, mounts propagate master -> slave but not slave -> master (a disposable lab host as the master)",
	prop.NeedRoot, "mnt.lab.slave", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Inner.Sees["from-master"], "master -> slave: the master's mount did not appear in the slave")
		t.Expect(r.InnerTable["from-master"], "master -> slave: /proc/<slave>/mountinfo lacks the master's mount")
		t.Expect(r.Inner.Sees["from-slave"], "inside, the slave's own mount is not in its mountinfo")
		t.Expect(!r.SeesBefore["from-slave"] && !r.Sees["from-slave"], "slave -> master: the slave's mount propagated to the master")
		t.Expect(!r.HostSees["from-slave"], "slave -> master: /proc/<master>/mountinfo lists the slave's mount")
	}))

// labLocked: the lab mounts "ro" read-only, nosuid, nodev, noexec; a helper
// in a new user+mount namespace (the control: a mount namespace only, in
// the lab's user namespace) tries to remount it writable, then suid.
func labLocked(l *lab) error {
	if err := l.mount("ro", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return err
	}
	p, err := l.start(innerArgs{Remount: "ro", Look: []string{"ro"}}, l.innerFlags(unix.CLONE_NEWUSER|unix.CLONE_NEWNS, unix.CLONE_NEWUSER))
	if err != nil {
		return err
	}
	if err := l.finish(p, "ro"); err != nil {
		return err
	}
	return l.options("ro")
}

var _ = prop.Register(withPremises(labProperty("mnt.locked-flags",
	"inside a user+mount namespace, a read-only nosuid mount inherited from the parent mount namespace cannot be remounted writable or suid (EPERM)",
	prop.NeedUserns, "mnt.lab.locked", func(t *prop.Trial, r *labRun) {
		t.Expect(errname.Is(r.Inner.RemountRW, unix.EPERM), "remounting the inherited read-only mount writable gave %s, want EPERM", r.Inner.RemountRW)
		t.Expect(errname.Is(r.Inner.RemountSUID, unix.EPERM), "remounting the inherited nosuid mount suid gave %s, want EPERM", r.Inner.RemountSUID)
		t.Expect(r.Options["ro"] == "ro,nosuid,nodev,noexec", "the lab's mount lost its flags: %q", r.Options["ro"])
	}),
	// The lab runs in a user+mount namespace of its own.
	prop.Creates(unix.CLONE_NEWUSER|unix.CLONE_NEWNS, "the lab's user+mount namespace")))

// withPremises adds premises to a property.
func withPremises(p prop.Property, premises ...prop.Premise) prop.Property {
	p.Premises = append(p.Premises, premises...)
	return p
}

// labUnbindable: the lab mounts "src" and makes it unbindable (the control:
// leaves it private), then tries to bind-mount it onto "dst".
func labUnbindable(l *lab) error {
	if err := l.mount("src", unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	if l.Isolated {
		if err := l.propagate("src", unix.MS_UNBINDABLE); err != nil {
			return err
		}
	}
	if err := l.mkdir("dst"); err != nil {
		return err
	}
	l.facts.Bind = errString(unix.Mount(l.path("src"), l.path("dst"), "", unix.MS_BIND, ""))
	return l.look(l.facts.Sees, "src", "dst")
}

var _ = prop.Register(labProperty("mnt.unbindable",
	"bind-mounting an unbindable mount fails with EINVAL (in a disposable lab)",
	prop.NeedRoot, "mnt.lab.unbindable", func(t *prop.Trial, r *labRun) {
		t.Expect(r.Propagation["src"] == "unbindable", "the mount is %q, not unbindable", r.Propagation["src"])
		t.Expect(errname.Is(r.Bind, unix.EINVAL), "bind-mounting the unbindable mount gave %s, want EINVAL", r.Bind)
		t.Expect(!r.Sees["dst"] && !r.HostSees["dst"], "the bind mount of the unbindable mount exists")
	}))
