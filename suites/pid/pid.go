// Package pid holds the PID namespace properties: the first process of a new
// PID namespace is its init, PID 1 with parent 0, sees none of the host's
// processes, cannot signal them, cannot be killed from inside, takes every
// process of its namespace with it when it dies, adopts the orphans, and
// namespaces nest 32 deep; its ns_last_pid takes privilege in the user
// namespace that owns it (lastpid.go).
package pid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

type selfFacts struct {
	PID  int `json:"pid"`
	PPID int `json:"ppid"`
}

// killArgs ask a helper to send a signal.
type killArgs struct {
	PID    int `json:"pid"`
	Signal int `json:"signal"`
}

// killFacts is what kill(2) returned: "ok" or the errno name.
type killFacts struct {
	Result string `json:"result"`
	Errno  int    `json:"errno,omitempty"`
}

func init() {
	helper.Handle("pid.self", func(struct{}) (any, error) {
		return selfFacts{PID: os.Getpid(), PPID: os.Getppid()}, nil
	})
	helper.Handle("pid.kill", func(a killArgs) (any, error) {
		return killResult(unix.Kill(a.PID, unix.Signal(a.Signal))), nil
	})
}

func killResult(err error) killFacts {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return killFacts{Result: unix.ErrnoName(errno), Errno: int(errno)}
	}
	if err != nil {
		return killFacts{Result: err.Error()}
	}
	return killFacts{Result: "ok"}
}

var _ = prop.Register(prop.Property{
	ID:    "pid.child-is-init",
	Title: "the child of a new PID namespace is PID 1 inside; the host's NSpid for it is <hostpid> 1",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: childIsInit,
})

var _ = prop.Register(prop.Property{
	ID:    "pid.parent-is-zero",
	Title: "getppid() is 0 inside a new PID namespace (its parent is outside); the host sees the real parent",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: parentIsZero,
})

var _ = prop.Register(prop.Property{
	ID:       "pid.kill-outside-esrch",
	Title:    "kill(<host pid>, 0) from inside a new PID namespace fails with ESRCH, while the host can signal the helper",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWPID,
	Premises: []prop.Premise{notPID1},
	Check:    killOutside,
})

var _ = prop.Register(prop.DistinctNS("pid", prop.NeedUserns))

// startSelf starts a held helper in a new PID namespace that reports its
// pid and parent.
func startSelf(t *prop.Trial) (*helper.Process, selfFacts, error) {
	var inside selfFacts
	p, err := t.Start(helper.Spec{Action: "pid.self", Cloneflags: unix.CLONE_NEWPID, Hold: true})
	if err == nil {
		err = p.Facts(&inside)
	}
	return p, inside, err
}

func childIsInit(t *prop.Trial) error {
	p, inside, err := startSelf(t)
	if err != nil {
		return err
	}
	nspid, err := NSpid(p.PID())
	if err != nil {
		return err
	}
	t.Inside("getpid", inside.PID)
	t.Host("pid", p.PID())
	t.Host("NSpid", nspid)
	t.Expect(inside.PID == 1, "inside getpid() = %d, not 1", inside.PID)
	want := []uint64{uint64(p.PID()), 1}
	t.Expect(len(nspid) >= 2 && slices.Equal(nspid[len(nspid)-2:], want),
		"the host's /proc/%d/status NSpid is %v, want it to end in %v", p.PID(), nspid, want)
	return nil
}

func parentIsZero(t *prop.Trial) error {
	p, inside, err := startSelf(t)
	if err != nil {
		return err
	}
	ppid, err := PPid(p.PID())
	if err != nil {
		return err
	}
	t.Inside("getppid", inside.PPID)
	t.Host("helper.ppid", ppid)
	t.Host("observer.pid", os.Getpid())
	t.Expect(inside.PPID == 0, "inside getppid() = %d, not 0: the parent is visible in the helper's PID namespace", inside.PPID)
	t.Expect(ppid == os.Getpid(), "the host sees parent %d for the helper, not the observer %d", ppid, os.Getpid())
	return nil
}

// notPID1 is the premise of kill-outside-esrch: the observer's PID names
// no process of the helper's own PID namespace, as 1 would.
var notPID1 = prop.Premise{Key: "not-pid-1", Why: "naming the observer from inside by its host PID", Probe: func(context.Context) error {
	if os.Getpid() == 1 {
		return prop.Unmet("nscheck runs as PID 1 here: the only host PID it can name is 1, which is the helper's own inside", "run it under an init")
	}
	return nil
}}

// killOutside has the helper signal the observer, a process it must not see.
func killOutside(t *prop.Trial) error {
	target := os.Getpid()
	p, err := t.Start(helper.Spec{Action: "pid.kill", Args: killArgs{PID: target, Signal: 0}, Cloneflags: unix.CLONE_NEWPID, Hold: true})
	if err != nil {
		return err
	}
	var inside killFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	t.Inside(fmt.Sprintf("kill(%d, 0)", target), inside.Result)
	t.Host("target (the observer)", target)
	t.Host(fmt.Sprintf("kill(%d, 0) of the helper", p.PID()), killResult(unix.Kill(p.PID(), 0)).Result)
	t.Expect(inside.Errno == int(unix.ESRCH), "inside, kill(%d, 0) of a host process gave %s, not ESRCH", target, inside.Result)
	return nil
}

// NSpid reads the NSpid line of /proc/<pid>/status (0: this process,
// through /proc/self, which is right in a new PID namespace too): the pid
// in each PID namespace from the reader's down to the process's own.
func NSpid(pid int) ([]uint64, error) {
	st, err := procfile.ReadStatus(pid)
	return st.NSpid, err
}

// PPid reads the parent of pid from /proc/<pid>/stat, as this process sees it.
func PPid(pid int) (int, error) {
	st, err := procfile.ReadStat(pid)
	return st.PPID, err
}
