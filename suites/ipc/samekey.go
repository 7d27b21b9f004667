package ipc

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/sysvipc"
	"github.com/nscheck/nscheck/prop"
)

// twinCreated is a sibling's handshake: whether its exclusive create of
// the shared key worked, and when it did not, the EEXIST that says why.
type twinCreated struct {
	HostNS  bool   `json:"host_ns,omitempty"`
	Created bool   `json:"created"`
	Err     string `json:"err,omitempty"`
}

func init() {
	helper.Handle("ipc.twin", twin)
}

// twin creates the key exclusively, reports that (handshake), waits until
// its sibling has done the same (go-ahead) and then looks at what it sees.
func twin(a createArgs) (any, error) {
	var hs twinCreated
	c, err := create(a)
	switch {
	case c.HostNS:
		hs.HostNS = true
	case err == nil:
		hs.Created = true
	case helper.Errno(err) == unix.EEXIST:
		// The one refusal that says the key is taken in this namespace.
		// Any other error (msgget's ENOSPC, a /proc/sysvipc that cannot
		// be read after the create) is no evidence about the sibling.
		hs.Err = unix.ErrnoName(unix.EEXIST)
	default:
		return nil, err
	}
	if err := helper.SendHandshake(hs); err != nil {
		return nil, err
	}
	if err := helper.AwaitGo(); err != nil {
		return nil, err
	}
	return lookup(kinds[a.Kind], a.Key)
}

var _ = prop.Register(prop.Property{
	ID: "ipc.same-key-independent",
	Title: "two sibling IPC namespaces each create a SysV message queue with the same key (IPC_EXCL) " +
		"without conflict, and each sees only its own",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWIPC,
	Check: sameKey,
})

func sameKey(t *prop.Trial) error {
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	k := kinds["msg"]
	key := sysvipc.RandomKey()
	modes := []int{0o600, 0o640}
	twins := make([]*helper.Process, len(modes))
	t.Host("key", keyString(key))
	// One after the other: the second creates while the first holds its queue.
	for i, mode := range modes {
		a := createArgs{Kind: k.file, Key: key, Mode: mode, Forbidden: forbidden}
		c, err := t.Spawn(helper.Spec{Action: "ipc.twin", Args: a, Cloneflags: unix.CLONE_NEWIPC, Handshake: true})
		if err != nil {
			return err
		}
		twins[i] = c
		var hs twinCreated
		if err := c.Handshake(&hs); err != nil {
			return err
		}
		name := fmt.Sprintf("sibling%d", i+1)
		t.Inside(name+".created", hs.Created)
		if hs.Err != "" {
			t.Inside(name+".msgget(IPC_CREAT|IPC_EXCL)", hs.Err)
		}
		if !expectOwnNS(t, hs.HostNS) {
			return nil
		}
		t.Expect(hs.Created, "%s could not create key %s (%s): the key is taken by its sibling", name, keyString(key), hs.Err)
	}
	// Both queues exist now: let both look.
	for _, c := range twins {
		c.Go()
	}
	for i, c := range twins {
		var seen lookupFacts
		if err := c.Reply(&seen); err != nil {
			return err
		}
		name := fmt.Sprintf("sibling%d", i+1)
		own := fmt.Sprintf("%o", modes[i])
		t.Inside(name+".sees perms", seen.Perms)
		t.Expect(slices.Equal(seen.Perms, []string{own}), "%s sees the objects %v with key %s, not only its own (perms %s)",
			name, seen.Perms, keyString(key), own)
	}
	return expectAbsent(t, k, key, "on the host")
}
