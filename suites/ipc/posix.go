package ipc

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/mqueue"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// mqArgs ask a helper to create a POSIX message queue and show it in an
// mqueue filesystem mounted in its own mount namespace.
type mqArgs struct {
	Name string `json:"name"`
	// Forbidden are the real host's IPC namespace (none in a control) and
	// mount namespace (always: the helper has a mount namespace of its own
	// in a control too).
	Forbidden    nsfs.ID `json:"forbidden"`
	ForbiddenMnt nsfs.ID `json:"forbidden_mnt"`
}

type mqFacts struct {
	HostNS bool `json:"host_ns,omitempty"`
	// MountedAt is where the helper mounted its mqueue filesystem.
	MountedAt string `json:"mounted_at"`
	Listed    bool   `json:"listed"`
}

// mqMountPoint is where a helper mounts its mqueue filesystem, in its own
// private mount namespace: the root of nscheck's scratch space, a directory
// that nscheck makes sure of (the caller may have no /tmp).
func mqMountPoint() string { return prop.ScratchRoot() }

func init() {
	helper.Handle("ipc.mq-create", mqCreate)
}

func mqCreate(a mqArgs) (any, error) {
	if host, err := inHostNS(a.Forbidden); err != nil || host {
		return mqFacts{HostNS: host}, err
	}
	fd, err := mqueue.Open(a.Name, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR, 0o600)
	if err != nil {
		return nil, helper.Fail("mq_open", err)
	}
	defer unix.Close(fd)
	at := mqMountPoint()
	if err := ownmount.Mount(a.ForbiddenMnt, "mqueue", at); err != nil {
		return nil, err
	}
	_, err = os.Stat(path.Join(at, a.Name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return mqFacts{MountedAt: at, Listed: err == nil}, nil
}

var _ = prop.Register(prop.Property{
	ID: "ipc.posix-mqueue-invisible",
	Title: "a POSIX message queue created inside a new IPC namespace (shown in an mqueue fs mounted there) " +
		"does not open on the host (mq_open ENOENT)",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWIPC,
	Premises: []prop.Premise{prop.Scratch},
	Check:    mqInvisible,
})

func mqInvisible(t *prop.Trial) error {
	name := "/" + prop.UniqueName("nscheck-")
	// Probe without O_CREAT: it never creates anything.
	if _, err := mqueue.Open(name, unix.O_RDONLY, 0); errors.Is(err, unix.ENOSYS) {
		return prop.Skip("this kernel has no POSIX message queues (mq_open: ENOSYS); enable CONFIG_POSIX_MQUEUE")
	}
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	mnt, err := nsfs.Of(0, "mnt")
	if err != nil {
		return err
	}
	a := mqArgs{Name: name, Forbidden: forbidden, ForbiddenMnt: mnt}
	p, err := t.Start(helper.Spec{Action: "ipc.mq-create", Args: a, Cloneflags: unix.CLONE_NEWIPC | unix.CLONE_NEWNS, Hold: true})
	if err != nil {
		return err
	}
	var inside mqFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	t.Inside("name", name)
	if !expectOwnNS(t, inside.HostNS) {
		return nil
	}
	t.Inside("listed in its mqueue fs at "+inside.MountedAt, inside.Listed)
	t.Expect(inside.Listed, "inside, the queue %s is not listed in the mqueue fs mounted at %s", name, inside.MountedAt)

	fd, openErr := mqueue.Open(name, unix.O_RDONLY, 0)
	t.Host("mq_open(name, O_RDONLY)", errnoOrOK(openErr))
	if openErr == nil {
		unix.Close(fd)
		if !t.Sandboxed {
			// Isolation is broken: never leave the queue on the host.
			t.Defer(func() { _ = mqueue.Unlink(name) })
		}
	}
	t.Expect(errors.Is(openErr, unix.ENOENT), "on the host mq_open(%s) gave %s instead of ENOENT", name, errnoOrOK(openErr))
	return hostMqueueMounts(t, name)
}

// hostMqueueMounts looks for the queue in every mqueue filesystem mounted in
// the observer's mount namespace (often none).
func hostMqueueMounts(t *prop.Trial, name string) error {
	mounts, err := procfile.Mounts(0)
	if err != nil {
		return err
	}
	var seen []string
	for _, m := range mounts {
		if m.FSType != "mqueue" {
			continue
		}
		seen = append(seen, m.Mountpoint)
		_, err := os.Stat(path.Join(m.Mountpoint, name))
		t.Expect(errors.Is(err, os.ErrNotExist), "the host's mqueue fs at %s shows %s", m.Mountpoint, name)
	}
	t.Host("mqueue mounts", seen)
	return nil
}

func errnoOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	if errno := helper.Errno(err); errno != 0 {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}
