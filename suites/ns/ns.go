// Package ns holds the cross-cutting namespace properties: what nsfs files
// and setns(2) promise for every type (a namespace outlives its processes
// while an fd holds it, setns checks the type, the NS_GET_* ioctls name the
// type and the owning user namespace) and that the per-user-namespace
// limits on creating namespaces are enforced.
//
// Where withholding a namespace cannot show the check's teeth, the control
// withholds the property's own ingredient instead (the wrong type, the
// lowered limit), chosen by Trial.Isolated; each property says which.
package ns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/prop"
)

// utsFacts is what a helper saw of its UTS namespace.
type utsFacts struct {
	NS       string `json:"ns"`
	Hostname string `json:"hostname"`
}

// setHostnameArgs names the hostname to set; Forbidden is the host's UTS
// namespace, where the helper refuses to.
type setHostnameArgs struct {
	Name      string  `json:"name"`
	Forbidden nsfs.ID `json:"forbidden"`
}

// joinArgs asks a helper to setns(2) into the namespace of the nsfs file
// (or /proc/<pid>/fd/<n> link to one) at Path, on one locked thread.
type joinArgs struct {
	Path string `json:"path"`
}

func init() {
	helper.Handle("ns.sethostname", func(a setHostnameArgs) (any, error) {
		if err := nsguard.Refuse("uts", a.Forbidden); err != nil {
			return nil, err
		}
		if err := unix.Sethostname([]byte(a.Name)); err != nil {
			return nil, helper.Fail("sethostname", err)
		}
		return lookUTS("/proc/self/ns/uts")
	})
	helper.Handle("ns.join-uts", func(a joinArgs) (any, error) {
		f, err := os.Open(a.Path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", a.Path, err)
		}
		defer f.Close()
		// This helper exits right after: the thread stays locked and in
		// the joined namespace until then.
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
			return nil, helper.Fail("setns(CLONE_NEWUTS)", err)
		}
		return lookUTS("/proc/thread-self/ns/uts")
	})
}

// lookUTS reports the calling thread's hostname and the namespace at nsPath.
func lookUTS(nsPath string) (utsFacts, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return utsFacts{}, helper.Fail("uname", err)
	}
	id, err := nsfs.Stat(nsPath)
	if err != nil {
		return utsFacts{}, err
	}
	return utsFacts{NS: id.String(), Hostname: unix.ByteSliceToString(u.Nodename[:])}, nil
}

var _ = prop.Register(prop.Property{
	ID:    "ns.kept-alive-by-fd",
	Title: "a UTS namespace outlives its last process while an fd holds it, and setns() into it sees its hostname",
	Needs: prop.NeedRoot,
	// The control withholds CLONE_NEWUTS: the namespace is then the
	// observer's own, which keeps members, and the check must notice.
	Flag:  unix.CLONE_NEWUTS,
	Check: keptAliveByFD,
})

func keptAliveByFD(t *prop.Trial) error {
	hostBefore, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	a := setHostnameArgs{Name: prop.UniqueName("nscheck-")}
	if a.Forbidden, err = t.Forbidden("uts"); err != nil {
		return err
	}
	p, err := t.Start(helper.Spec{Action: "ns.sethostname", Args: a, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
	if err != nil {
		return err
	}
	var first utsFacts
	if err := p.Facts(&first); err != nil {
		return err
	}
	fd, err := os.Open(nsfs.Path(p.PID(), "uts"))
	if err != nil {
		return fmt.Errorf("hold the helper's uts namespace: %w", err)
	}
	defer fd.Close()
	path, err := fdPath(fd)
	if err != nil {
		return err
	}
	held, err := nsfs.Stat(path)
	if err != nil {
		return err
	}
	if err := p.Release(); err != nil {
		return err
	}
	members, err := membersOf("uts", held)
	if err != nil {
		return err
	}
	var joined utsFacts
	if err := t.Run(helper.Spec{Action: "ns.join-uts", Args: joinArgs{Path: path}}, &joined); err != nil {
		return err
	}
	hostAfter, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	t.Inside("first: hostname set", first.Hostname)
	t.Inside("first: ns", first.NS)
	t.Inside("joiner: hostname", joined.Hostname)
	t.Inside("joiner: ns", joined.NS)
	t.Host("held fd ns", held.String())
	t.Host("first helper reaped", p.PID())
	t.Host("processes left in the held namespace", members)
	t.Host("hostname before", hostBefore)
	t.Host("hostname after", hostAfter)
	t.Expect(first.NS == held.String(), "the fd holds %s, not the helper's namespace %s", held, first.NS)
	t.Expect(len(members) == 0, "the namespace still had processes %v after its helper was reaped: nothing shows the fd kept it alive", members)
	t.Expect(joined.NS == held.String() && joined.Hostname == a.Name, "setns() through the fd did not reach the namespace (%s, hostname %q; want %s, %q)", joined.NS, joined.Hostname, held, a.Name)
	t.Expect(hostAfter == hostBefore, "the host's hostname changed from %q to %q", hostBefore, hostAfter)
	return nil
}

// fdPath is the /proc path of an open file of this process, which another
// process (a helper) can open to reach the same namespace: by the pid this
// process's /proc names it by (prop.SelfPID).
func fdPath(f *os.File) (string, error) {
	pid, err := prop.SelfPID()
	if err != nil {
		return "", err
	}
	return "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(int(f.Fd())), nil
}

// membersOf lists the PIDs (as this process's /proc shows them) whose
// namespace of typ is id.
func membersOf(typ string, id nsfs.ID) ([]int, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/ns/" + typ)
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	members := []int{}
	for _, p := range paths {
		got, err := nsfs.Stat(p)
		if err != nil {
			continue // gone, or a kernel thread
		}
		if got == id {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
			members = append(members, pid)
		}
	}
	return members, nil
}

// setnsFacts is what a helper saw trying setns(2) with each type's fd.
type setnsFacts struct {
	TID    int               `json:"tid"`
	Before map[string]string `json:"before"`
	Result map[string]string `json:"result"`
	Flag   map[string]string `json:"flag"`
}

func init() {
	helper.Handle("ns.setns-types", setnsTypes)
}

// setnsTypes opens its own nsfs file of every type and calls setns(2) on
// one locked thread with the flag of the next type (Wrong), or of the
// same type (the control).
func setnsTypes(wrong bool) (any, error) {
	runtime.LockOSThread() // the helper exits after: never unlocked
	f := setnsFacts{TID: unix.Gettid(), Before: map[string]string{}, Result: map[string]string{}, Flag: map[string]string{}}
	for i, typ := range nsfs.Types {
		path := "/proc/thread-self/ns/" + typ
		id, err := nsfs.Stat(path)
		if err != nil {
			return nil, err
		}
		f.Before[typ] = id.String()
		flag := nsfs.Flags[typ]
		if wrong {
			flag = nsfs.Flags[nsfs.Types[(i+1)%len(nsfs.Types)]]
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		f.Flag[typ] = helper.FlagNames(flag)
		f.Result[typ] = errname.Of(unix.Setns(fd, int(flag)))
		unix.Close(fd)
	}
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID:    "ns.setns-wrong-type",
	Title: "setns() with an nsfs fd of one type and the CLONE_NEW* flag of another fails with EINVAL, for every type",
	Needs: prop.NeedRoot,
	// Nominal: the control passes each fd's own flag instead of a wrong
	// one, which setns accepts (joining the namespace one is in), so the
	// check must see the difference.
	Flag: unix.CLONE_NEWUTS,
	Check: func(t *prop.Trial) error {
		p, err := t.Start(helper.Spec{Action: "ns.setns-types", Args: t.Isolated, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
		if err != nil {
			return err
		}
		var f setnsFacts
		if err := p.Facts(&f); err != nil {
			return err
		}
		for _, typ := range nsfs.Types {
			after, err := nsfs.Stat(fmt.Sprintf("/proc/%d/task/%d/ns/%s", p.PID(), f.TID, typ))
			if err != nil {
				return err
			}
			t.Inside("setns(ns/"+typ+", "+f.Flag[typ]+")", f.Result[typ])
			t.Host(fmt.Sprintf("/proc/%d/task/%d/ns/%s", p.PID(), f.TID, typ), after.String())
			t.Expect(errname.Is(f.Result[typ], unix.EINVAL), "setns(fd of ns/%s, %s) gave %s, want EINVAL", typ, f.Flag[typ], f.Result[typ])
			t.Expect(after.String() == f.Before[typ], "the thread's %s namespace changed from %s to %s", typ, f.Before[typ], after)
		}
		return nil
	},
})
