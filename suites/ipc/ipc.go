// Package ipc holds the IPC namespace properties: SysV and POSIX IPC objects
// created inside a new IPC namespace are invisible outside it and the
// outside's are invisible inside, sibling namespaces use the same keys
// independently, and the IPC limits are per namespace.
package ipc

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/sysvipc"
	"github.com/nscheck/nscheck/prop"
)

// kind is a SysV IPC object type.
type kind struct {
	// file is its /proc/sysvipc file, short its name in property IDs.
	file, short string
	what, call  string
	get         func(key int32, flags int) (int, error)
	remove      func(id int) error
}

var kinds = map[string]kind{
	"msg": {"msg", "msgq", "message queue", "msgget", sysvipc.Msgget, sysvipc.MsgRemove},
	"shm": {"shm", "shm", "shared memory segment", "shmget",
		func(key int32, flags int) (int, error) { return sysvipc.Shmget(key, 4096, flags) }, sysvipc.ShmRemove},
	"sem": {"sem", "sem", "semaphore set", "semget",
		func(key int32, flags int) (int, error) { return sysvipc.Semget(key, 1, flags) }, sysvipc.SemRemove},
}

func kindOf(file string) (kind, error) {
	k, ok := kinds[file]
	if !ok {
		return kind{}, fmt.Errorf("unknown SysV IPC kind %q", file)
	}
	return k, nil
}

// createArgs ask a helper to create an object with a key.
type createArgs struct {
	Kind string `json:"kind"`
	Key  int32  `json:"key"`
	Mode int    `json:"mode"`
	// Forbidden is the real host's IPC namespace: a helper that finds
	// itself in it creates nothing and says so (HostNS). Zero in a control,
	// whose host is a disposable sandbox.
	Forbidden nsfs.ID `json:"forbidden"`
}

// createdFacts is what the helper saw after creating an object.
type createdFacts struct {
	HostNS bool `json:"host_ns,omitempty"`
	ID     int  `json:"id"`
	// Listed says whether its own /proc/sysvipc file lists the key.
	Listed bool `json:"listed"`
}

// lookupFacts is what a lookup by key (flags 0) found.
type lookupFacts struct {
	// Result is "found id N" or the errno name.
	Result string `json:"result"`
	Errno  int    `json:"errno,omitempty"`
	ID     int    `json:"-"`
	// Perms lists the perms column of every object with the key in
	// /proc/sysvipc (empty: not listed).
	Perms []string `json:"perms,omitempty"`
}

func (l lookupFacts) found() bool  { return l.Result != unix.ErrnoName(unix.ENOENT) }
func (l lookupFacts) listed() bool { return len(l.Perms) > 0 }

func init() {
	helper.Handle("ipc.sysv-create", func(a createArgs) (any, error) { return create(a) })
	helper.Handle("ipc.sysv-lookup", func(a createArgs) (any, error) {
		k, err := kindOf(a.Kind)
		if err != nil {
			return nil, err
		}
		return lookup(k, a.Key)
	})
}

// inHostNS reports whether the caller is in the forbidden IPC namespace.
func inHostNS(forbidden nsfs.ID) (bool, error) { return nsguard.In("ipc", forbidden) }

func create(a createArgs) (createdFacts, error) {
	k, err := kindOf(a.Kind)
	if err != nil {
		return createdFacts{}, err
	}
	if host, err := inHostNS(a.Forbidden); err != nil || host {
		return createdFacts{HostNS: host}, err
	}
	id, err := k.get(a.Key, sysvipc.IPCCreat|sysvipc.IPCExcl|a.Mode)
	if err != nil {
		return createdFacts{}, helper.Fail(k.call, err)
	}
	l, err := lookup(k, a.Key)
	if err != nil {
		return createdFacts{}, err
	}
	return createdFacts{ID: id, Listed: l.listed()}, nil
}

// lookup looks a key up in the caller's IPC namespace: with the *get call
// and in /proc/sysvipc.
func lookup(k kind, key int32) (lookupFacts, error) {
	var l lookupFacts
	id, err := k.get(key, 0)
	switch errno := helper.Errno(err); {
	case err == nil:
		l.Result, l.ID = "found id "+strconv.Itoa(id), id
	case errno != 0:
		l.Result, l.Errno = unix.ErrnoName(errno), int(errno)
	default:
		return l, err
	}
	objs, err := sysvipc.Read(k.file)
	if err != nil {
		return l, err
	}
	for _, o := range objs {
		if o.Key == key {
			l.Perms = append(l.Perms, o.Fields["perms"])
		}
	}
	return l, nil
}

// guard is the Forbidden namespace for the helpers of t: the observer's own
// IPC namespace in a real run, none in a control.
func guard(t *prop.Trial) (nsfs.ID, error) { return t.Forbidden("ipc") }

var _ = prop.Register(invisible(kinds["msg"]))
var _ = prop.Register(invisible(kinds["shm"]))
var _ = prop.Register(invisible(kinds["sem"]))
var _ = prop.Register(prop.DistinctNS("ipc", prop.NeedUserns))

// invisible is the ipc.sysv-<kind>-invisible property: an object created
// inside is absent on the host, by key and in /proc/sysvipc.
func invisible(k kind) prop.Property {
	return prop.Property{
		ID: "ipc.sysv-" + k.short + "-invisible",
		// Concatenated, not formatted: this runs in every helper's start.
		Title: "a SysV " + k.what + " created inside a new IPC namespace is absent on the host (" +
			k.call + " ENOENT, not in /proc/sysvipc/" + k.file + ")",
		Needs: prop.NeedUserns,
		Flag:  unix.CLONE_NEWIPC,
		Check: func(t *prop.Trial) error { return objectInvisible(t, k) },
	}
}

func objectInvisible(t *prop.Trial, k kind) error {
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	key := sysvipc.RandomKey()
	a := createArgs{Kind: k.file, Key: key, Mode: 0o600, Forbidden: forbidden}
	p, err := t.Start(helper.Spec{Action: "ipc.sysv-create", Args: a, Cloneflags: unix.CLONE_NEWIPC, Hold: true})
	if err != nil {
		return err
	}
	var inside createdFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	t.Inside("key", keyString(key))
	if !expectOwnNS(t, inside.HostNS) {
		return nil
	}
	t.Inside("id", inside.ID)
	t.Inside("listed in /proc/sysvipc/"+k.file, inside.Listed)
	t.Expect(inside.Listed, "inside, the %s it created (key %s) is not listed in /proc/sysvipc/%s", k.what, keyString(key), k.file)
	return expectAbsent(t, k, key, "on the host")
}

// expectOwnNS records a leak when a helper found itself in the host's IPC
// namespace (and so created nothing); it reports whether it did not.
func expectOwnNS(t *prop.Trial, hostNS bool) bool {
	t.Inside("in the host's IPC namespace", hostNS)
	return t.Expect(!hostNS, "the helper is in the host's IPC namespace (it refused to create anything there)")
}

// expectAbsent looks key up on the observer's side and expects nothing.
// Should isolation be broken, the object is removed from the real host.
func expectAbsent(t *prop.Trial, k kind, key int32, where string) error {
	l, err := lookup(k, key)
	if err != nil {
		return err
	}
	t.Host(k.call+"(key, 0)", l.Result)
	t.Host("listed in /proc/sysvipc/"+k.file, l.listed())
	t.Expect(!l.found(), "%s %s(%s) found the %s (%s) instead of ENOENT", where, k.call, keyString(key), k.what, l.Result)
	t.Expect(!l.listed(), "%s /proc/sysvipc/%s lists key %s", where, k.file, keyString(key))
	if l.Errno == 0 && !t.Sandboxed {
		if err := k.remove(l.ID); err != nil {
			return fmt.Errorf("remove the leaked %s from the host: %w", k.what, err)
		}
	}
	return nil
}

func keyString(key int32) string { return fmt.Sprintf("%#08x", uint32(key)) }
