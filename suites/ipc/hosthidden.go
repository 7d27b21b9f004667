package ipc

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/sysvipc"
	"github.com/nscheck/nscheck/prop"
)

// outerArgs drive the outer helper of ipc.sysv-msgq-host-hidden, which
// stands in for the host: the "host" queue is created in its IPC namespace,
// never on the real host.
type outerArgs struct {
	createArgs
	// InnerFlags are the clone flags of the helper that looks for the queue.
	InnerFlags uintptr `json:"inner_flags"`
}

type outerFacts struct {
	Outer createdFacts `json:"outer"`
	Inner lookupFacts  `json:"inner"`
}

func init() {
	helper.Handle("ipc.outer", func(a outerArgs) (any, error) {
		var f outerFacts
		var err error
		if f.Outer, err = create(a.createArgs); err != nil || f.Outer.HostNS {
			return f, err
		}
		inner := helper.Spec{Action: "ipc.sysv-lookup", Args: a.createArgs, Cloneflags: a.InnerFlags}
		err = helper.Run(context.Background(), inner, &f.Inner)
		return f, err
	})
}

var _ = prop.Register(prop.Property{
	ID: "ipc.sysv-msgq-host-hidden",
	Title: "a SysV message queue of the outer namespace is absent inside a new IPC namespace " +
		"(msgget ENOENT, not in /proc/sysvipc/msg); the outer \"host\" is a disposable IPC namespace",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWIPC,
	Check: hostHidden,
})

// hostHidden creates the "host" queue in an outer helper's own IPC namespace
// (in a control, in the sandbox's), which then starts the helper under
// test. The real host's IPC namespace is never written.
func hostHidden(t *prop.Trial) error {
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	k := kinds["msg"]
	key := sysvipc.RandomKey()
	a := outerArgs{
		createArgs: createArgs{Kind: k.file, Key: key, Mode: 0o600, Forbidden: forbidden},
		InnerFlags: t.Nested(unix.CLONE_NEWIPC),
	}
	var f outerFacts
	if err := t.Run(helper.Spec{Action: "ipc.outer", Args: a, Cloneflags: unix.CLONE_NEWIPC}, &f); err != nil {
		return err
	}
	t.Host("key", keyString(key))
	t.Host("outer (the stand-in host) created id", f.Outer.ID)
	t.Host("outer lists it in /proc/sysvipc/msg", f.Outer.Listed)
	if !expectOwnNS(t, f.Outer.HostNS) {
		return nil
	}
	t.Expect(f.Outer.Listed, "the outer namespace does not list its own queue (key %s)", keyString(key))
	t.Inside("msgget(key, 0)", f.Inner.Result)
	t.Inside("listed in /proc/sysvipc/msg", f.Inner.listed())
	t.Expect(!f.Inner.found(), "inside, msgget(%s) found the outer namespace's queue (%s) instead of ENOENT", keyString(key), f.Inner.Result)
	t.Expect(!f.Inner.listed(), "inside, /proc/sysvipc/msg lists the outer namespace's key %s", keyString(key))
	return nil
}
