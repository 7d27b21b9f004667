// Package ipc holds the IPC namespace properties: SysV and POSIX IPC objects
// created inside a new IPC namespace are invisible outside it.
package ipc

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/prop"
	"github.com/nscheck/nscheck/internal/sysvipc"
)

// createdFacts is what the helper saw after creating an object.
type createdFacts struct {
	ID int `json:"id"`
	// Listed says whether its own /proc/sysvipc file lists the key.
	Listed bool `json:"listed"`
}

func init() {
	helper.Handle("ipc.msgget", func(key int32) (any, error) {
		id, err := sysvipc.Msgget(key, sysvipc.IPCCreat|sysvipc.IPCExcl|0o600)
		if err != nil {
			return nil, helper.Fail("msgget", err)
		}
		objs, err := sysvipc.Read("msg")
		if err != nil {
			return nil, err
		}
		return createdFacts{ID: id, Listed: sysvipc.HasKey(objs, key)}, nil
	})
}

var _ = prop.Register(prop.Property{
	ID:    "ipc.sysv-msgq-invisible",
	Title: "a SysV message queue created inside a new IPC namespace is absent on the host (msgget ENOENT, not in /proc/sysvipc/msg)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWIPC,
	Check: msgqInvisible,
})

var _ = prop.Register(prop.DistinctNS("ipc", prop.NeedUserns))

func msgqInvisible(t *prop.Trial) error {
	key := sysvipc.RandomKey()
	p, err := t.Start(helper.Spec{Action: "ipc.msgget", Args: key, Cloneflags: unix.CLONE_NEWIPC, Hold: true})
	if err != nil {
		return err
	}
	var inside createdFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	t.Inside("key", key)
	t.Inside("msqid", inside.ID)
	t.Inside("listed in /proc/sysvipc/msg", inside.Listed)
	t.Expect(inside.Listed, "inside, the queue it created (key %#x) is not listed in /proc/sysvipc/msg", uint32(key))

	hostID, getErr := sysvipc.Msgget(key, 0)
	objs, err := sysvipc.Read("msg")
	if err != nil {
		return err
	}
	listed := sysvipc.HasKey(objs, key)
	t.Host("msgget(key, 0)", errString(getErr))
	t.Host("listed in /proc/sysvipc/msg", listed)
	t.Expect(errors.Is(getErr, unix.ENOENT), "on the host msgget(%#x) found the queue (id %d, %v) instead of ENOENT", uint32(key), hostID, getErr)
	t.Expect(!listed, "the host's /proc/sysvipc/msg lists key %#x", uint32(key))
	if getErr == nil && !t.Sandboxed {
		// Isolation is broken: never leave the queue on the host.
		_ = sysvipc.MsgRemove(hostID)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
