package pid

import (
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// procView is what a helper sees in a proc it mounted itself.
type procView struct {
	PID      int    `json:"pid"`
	ProcSelf string `json:"proc_self"`
	PIDs     []int  `json:"pids"`
}

func init() {
	helper.Handle("pid.proc-view", func(forbiddenMnt nsfs.ID) (any, error) {
		if err := ownmount.Mount(forbiddenMnt, "proc", "/proc"); err != nil {
			return nil, err
		}
		self, err := os.Readlink("/proc/self")
		if err != nil {
			return nil, err
		}
		pids, err := procfile.Procs()
		if err != nil {
			return nil, err
		}
		return procView{PID: os.Getpid(), ProcSelf: self, PIDs: pids}, nil
	})
}

var _ = prop.Register(prop.Property{
	ID:    "pid.host-procs-hidden",
	Title: "with its own /proc mounted, a helper in a new PID namespace lists only itself, no host PIDs",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: hostProcsHidden,
})

var _ = prop.Register(prop.Property{
	ID:    "pid.proc-self-is-1",
	Title: "/proc/self in a proc mounted inside a new PID namespace resolves to 1",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: procSelfIsOne,
})

// startProcView starts a held helper in new PID and mount namespaces that
// mounts its own proc and reports what it lists there.
func startProcView(t *prop.Trial) (*helper.Process, procView, error) {
	var v procView
	hostMnt, err := nsfs.Of(0, "mnt")
	if err != nil {
		return nil, v, err
	}
	p, err := t.Start(helper.Spec{Action: "pid.proc-view", Args: hostMnt, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Hold: true})
	if err == nil {
		err = p.Facts(&v)
	}
	if err == nil {
		var nspid []uint64
		nspid, err = NSpid(p.PID())
		t.Host("helper.NSpid", nspid)
	}
	return p, v, err
}

func hostProcsHidden(t *prop.Trial) error {
	_, v, err := startProcView(t)
	if err != nil {
		return err
	}
	host, err := procfile.Procs()
	if err != nil {
		return err
	}
	t.Inside("getpid", v.PID)
	t.Inside("pids in its /proc", v.PIDs)
	t.Host("processes in /proc", len(host))
	t.Host("observer.pid", os.Getpid())
	t.Expect(slices.Equal(v.PIDs, []int{v.PID}), "inside, its own /proc lists %d processes %v, not only itself (%d)", len(v.PIDs), v.PIDs, v.PID)
	return nil
}

func procSelfIsOne(t *prop.Trial) error {
	_, v, err := startProcView(t)
	if err != nil {
		return err
	}
	own, err := os.Readlink("/proc/self")
	if err != nil {
		return err
	}
	t.Inside("readlink /proc/self", v.ProcSelf)
	t.Inside("getpid", v.PID)
	t.Host("readlink /proc/self", own)
	t.Expect(v.ProcSelf == "1", "inside, /proc/self resolves to %s, not 1", v.ProcSelf)
	return nil
}
