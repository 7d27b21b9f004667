// Package pid holds the PID namespace properties: the first process of a new
// PID namespace is its init, PID 1, and sees none of the host's processes.
package pid

import (
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/prop"
)

type selfFacts struct {
	PID  int `json:"pid"`
	PPID int `json:"ppid"`
}

func init() {
	helper.Handle("pid.self", func(struct{}) (any, error) {
		return selfFacts{PID: os.Getpid(), PPID: os.Getppid()}, nil
	})
}

var _ = prop.Register(prop.Property{
	ID:    "pid.child-is-init",
	Title: "the child of a new PID namespace is PID 1 inside; the host's NSpid for it is <hostpid> 1",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: childIsInit,
})

var _ = prop.Register(prop.DistinctNS("pid", prop.NeedUserns))

func childIsInit(t *prop.Trial) error {
	p, err := t.Start(helper.Spec{Action: "pid.self", Cloneflags: unix.CLONE_NEWPID, Hold: true})
	if err != nil {
		return err
	}
	var inside selfFacts
	if err := p.Facts(&inside); err != nil {
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

// NSpid reads the NSpid line of /proc/<pid>/status: the pid in each PID
// namespace from the reader's down to the process's own.
func NSpid(pid int) ([]uint64, error) {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		return nil, fmt.Errorf("open procfs: %w", err)
	}
	proc, err := fs.Proc(pid)
	if err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	st, err := proc.NewStatus()
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	return st.NSpids, nil
}
