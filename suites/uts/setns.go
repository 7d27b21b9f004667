package uts

import (
	"fmt"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// rejoinFacts is what a thread that joined a UTS namespace saw.
type rejoinFacts struct {
	Names Names `json:"names"`
	TID   int   `json:"tid"`
	// Thread is the joined thread's ns/uts.
	Thread nsfs.ID `json:"thread_ns"`
}

func init() {
	helper.Handle("uts.setns", rejoin)
}

// rejoin joins the UTS namespace at path on one locked OS thread (setns of a
// UTS namespace moves only the calling thread) and reads the names there.
// The thread is never unlocked and stays parked, in that namespace, until
// the helper exits, so the host can read /proc/<pid>/task/<tid>/ns/uts.
func rejoin(path string) (any, error) {
	type result struct {
		f   rejoinFacts
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		r.f, r.err = joinAndRead(path)
		ch <- r
		select {} // keep the joined thread for the host to inspect
	}()
	r := <-ch
	return r.f, r.err
}

func joinAndRead(path string) (rejoinFacts, error) {
	var f rejoinFacts
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return f, helper.Fail("open "+path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWUTS); err != nil {
		return f, helper.Fail("setns(CLONE_NEWUTS)", err)
	}
	if f.Names, err = Get(); err != nil {
		return f, err
	}
	f.TID = unix.Gettid()
	f.Thread, err = nsfs.Stat("/proc/thread-self/ns/uts")
	return f, err
}

var _ = prop.Register(prop.Property{
	ID: "uts.setns-rejoin",
	Title: "a second process that setns()es (one thread) into a held UTS namespace sees the hostname set there; " +
		"the host's hostname stays",
	Needs: prop.NeedRoot,
	Flag:  unix.CLONE_NEWUTS,
	Check: setnsRejoin,
})

func setnsRejoin(t *prop.Trial) error {
	before, forbidden, err := baseline(t)
	if err != nil {
		return err
	}
	value := prop.UniqueName("nscheck-")
	held, _, err := startSetter(t, hostname, value, forbidden)
	if err != nil {
		return err
	}
	heldNS, err := nsfs.Of(held.PID(), "uts")
	if err != nil {
		return err
	}
	// The joiner stays in every namespace of the observer: only setns moves it.
	joiner, err := t.Start(helper.Spec{Action: "uts.setns", Args: nsfs.Path(held.PID(), "uts"), Hold: true})
	if err != nil {
		return err
	}
	var f rejoinFacts
	if err := joiner.Facts(&f); err != nil {
		return err
	}
	taskNS, err := nsfs.Stat("/proc/" + strconv.Itoa(joiner.PID()) + "/task/" + strconv.Itoa(f.TID) + "/ns/uts")
	if err != nil {
		return err
	}
	own, err := nsfs.Of(0, "uts")
	if err != nil {
		return err
	}
	t.Inside("joined-thread.hostname", f.Names.Hostname)
	t.Inside("joined-thread.ns.uts", f.Thread.String())
	t.Host("held.ns.uts", heldNS.String())
	t.Host(fmt.Sprintf("joiner.task.%d.ns.uts", f.TID), taskNS.String())
	t.Host("own.ns.uts", own.String())
	t.Expect(f.Names.Hostname == value, "the thread that joined the held namespace sees hostname %q, not the %q set there", f.Names.Hostname, value)
	t.Expect(f.Thread == heldNS && taskNS == heldNS, "the joined thread is in %s (host view %s), not in the held namespace %s", f.Thread, taskNS, heldNS)
	return expectHostKept(t, hostname, before)
}
