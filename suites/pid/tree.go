package pid

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/ownmount"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// A Node describes a lingering process to start and the ones it starts.
type Node struct {
	Flags    uintptr `json:"flags"`
	Children []Node  `json:"children,omitempty"`
}

// treeArgs ask a helper to start a tree of lingering processes.
type treeArgs struct {
	Children []Node `json:"children"`
	// Linger bounds the life of every lingering process: they are killed
	// long before, by their namespace or by the check's cleanup.
	Linger time.Duration `json:"linger"`
	// ForbiddenMnt is the host's mount namespace, for helpers that mount
	// their own /proc (pid.orphan-init).
	ForbiddenMnt nsfs.ID `json:"forbidden_mnt,omitempty"`
}

// nodeFacts is a started process: its pid as its starter sees it and as it
// sees itself, and its own children.
type nodeFacts struct {
	PID      int         `json:"pid"`
	Self     int         `json:"self"`
	Children []nodeFacts `json:"children,omitempty"`
}

func init() {
	helper.Handle("pid.tree", func(a treeArgs) (any, error) {
		kids, err := startTree(a)
		return nodeFacts{Self: os.Getpid(), Children: kids}, err
	})
	helper.Handle("pid.linger", func(a treeArgs) (any, error) {
		kids, err := startTree(a)
		if err != nil {
			return nil, err
		}
		if err := helper.SendHandshake(nodeFacts{Self: os.Getpid(), Children: kids}); err != nil {
			return nil, err
		}
		time.Sleep(a.Linger)
		return nil, nil
	})
}

// startTree starts a.Children as detached lingering processes, each with
// its own subtree, and returns once all of them are running.
func startTree(a treeArgs) ([]nodeFacts, error) {
	var kids []nodeFacts
	for _, n := range a.Children {
		s := helper.Spec{Action: "pid.linger", Args: treeArgs{Children: n.Children, Linger: a.Linger}, Cloneflags: n.Flags,
			Detached: true, Handshake: true}
		c, err := helper.Spawn(context.Background(), s)
		if err != nil {
			return kids, err
		}
		var f nodeFacts
		if err := c.Handshake(&f); err != nil {
			c.Close()
			return kids, err
		}
		f.PID = c.PID()
		kids = append(kids, f)
	}
	return kids, nil
}

var _ = prop.Register(prop.Property{
	ID: "pid.init-death-reaps-all",
	Title: "when the init of a new PID namespace dies, every process of the namespace dies with it, " +
		"those of a nested PID namespace too",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: initDeathReapsAll,
})

// initDeathReapsAll has the init start a nested PID namespace (an init with
// a child of its own), both without a parent-death
// signal, so only the PID namespace can take them down. The observer kills
// the init from outside and reaps it: the kernel makes an init wait for
// every process of its namespace to be gone before it can be reaped, so
// from then on none may be alive.
func initDeathReapsAll(t *prop.Trial) error {
	tree := []Node{{Flags: t.Nested(unix.CLONE_NEWPID), Children: []Node{{Flags: 0}}}}
	p, err := t.Start(helper.Spec{Action: "pid.tree", Args: treeArgs{Children: tree, Linger: prop.TrialTimeout()},
		Cloneflags: unix.CLONE_NEWPID, Hold: true})
	if err != nil {
		return err
	}
	var inside nodeFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	desc, err := openDescendants(t, p.PID())
	if err != nil {
		return err
	}
	if len(desc) != 2 {
		return fmt.Errorf("the init %d has %d descendants, want the 2 it started", p.PID(), len(desc))
	}
	t.Inside("tree", inside)
	if err := unix.PidfdSendSignal(p.PidFD(), unix.SIGKILL, nil, 0); err != nil {
		return fmt.Errorf("kill the init %d: %w", p.PID(), err)
	}
	_ = p.Release() // killed on purpose: its exit status is SIGKILL
	for _, d := range desc {
		alive := unix.PidfdSendSignal(d.fd, 0, nil, 0) == nil
		t.Host(fmt.Sprintf("descendant %d (NSpid %v) alive after the init was reaped", d.pid, d.nspid), alive)
		t.Expect(!alive, "process %d (NSpid %v) survived the death of its namespace's init", d.pid, d.nspid)
	}
	return nil
}

// descendant is a process below a helper, held by a pidfd so that a
// recycled pid is never mistaken for it.
type descendant struct {
	pid   int
	nspid []uint64
	fd    int
}

// openDescendants opens a pidfd for every descendant of root, which the
// trial kills and closes at its end.
func openDescendants(t *prop.Trial, root int) ([]descendant, error) {
	procs, err := procfile.Procs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, pid := range procs {
		if ppid, err := PPid(pid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []descendant
	for queue := children[root]; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		queue = append(queue, children[pid]...)
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return nil, fmt.Errorf("pidfd_open(%d): %w", pid, err)
		}
		t.Defer(func() {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			unix.Close(fd)
		})
		nspid, _ := NSpid(pid)
		out = append(out, descendant{pid: pid, nspid: nspid, fd: fd})
	}
	return out, nil
}

// orphanFacts is what the init of pid.orphans-reparent-to-init saw in its
// own /proc once the orphan's parent was gone.
type orphanFacts struct {
	Self       int `json:"self"`
	Orphan     int `json:"orphan"`
	OrphanPPid int `json:"orphan_ppid"`
}

func init() {
	helper.Handle("pid.orphan-init", func(a treeArgs) (any, error) {
		if err := ownmount.Mount(a.ForbiddenMnt, "proc", "/proc"); err != nil {
			return nil, err
		}
		// The maker starts the orphan-to-be and exits: once it is reaped,
		// the orphan has been reparented.
		var maker nodeFacts
		if err := helper.Run(context.Background(), helper.Spec{Action: "pid.tree", Args: a}, &maker); err != nil {
			return nil, err
		}
		if len(maker.Children) != 1 {
			return nil, fmt.Errorf("the maker started %d processes, not 1", len(maker.Children))
		}
		f := orphanFacts{Self: os.Getpid(), Orphan: maker.Children[0].PID}
		var err error
		f.OrphanPPid, err = PPid(f.Orphan)
		return f, err
	})
}

var _ = prop.Register(prop.Property{
	ID:    "pid.orphans-reparent-to-init",
	Title: "an orphan inside a new PID namespace is reparented to the namespace's init, not to an init outside",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: orphansReparent,
})

func orphansReparent(t *prop.Trial) error {
	hostMnt, err := nsfs.Of(0, "mnt")
	if err != nil {
		return err
	}
	a := treeArgs{Children: []Node{{Flags: 0}}, Linger: prop.TrialTimeout(), ForbiddenMnt: hostMnt}
	p, err := t.Start(helper.Spec{Action: "pid.orphan-init", Args: a, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Hold: true})
	if err != nil {
		return err
	}
	var f orphanFacts
	if err := p.Facts(&f); err != nil {
		return err
	}
	initNS, err := nsfs.Of(p.PID(), "pid")
	if err != nil {
		return err
	}
	orphan, err := findInNS(initNS, f.Orphan)
	if err != nil {
		return err
	}
	fd, err := unix.PidfdOpen(orphan, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open(%d): %w", orphan, err)
	}
	t.Defer(func() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	})
	ppid, err := PPid(orphan)
	if err != nil {
		return err
	}
	t.Inside("init getpid", f.Self)
	t.Inside("orphan pid", f.Orphan)
	t.Inside("orphan ppid", f.OrphanPPid)
	t.Host("init pid", p.PID())
	t.Host("orphan pid", orphan)
	t.Host("orphan ppid", ppid)
	t.Expect(f.OrphanPPid == f.Self, "inside, the orphan's parent is %d, not the namespace's init (%d)", f.OrphanPPid, f.Self)
	t.Expect(ppid == p.PID(), "the host sees the orphan %d reparented to %d, not to the namespace's init %d", orphan, ppid, p.PID())
	return nil
}

// findInNS finds the host pid of the process whose pid in the PID
// namespace ns is inner.
func findInNS(ns nsfs.ID, inner int) (int, error) {
	procs, err := procfile.Procs()
	if err != nil {
		return 0, err
	}
	for _, pid := range procs {
		id, err := nsfs.Of(pid, "pid")
		if err != nil || id != ns {
			continue
		}
		if nspid, err := NSpid(pid); err == nil && len(nspid) > 0 && nspid[len(nspid)-1] == uint64(inner) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process has pid %d in PID namespace %s", inner, ns)
}
