package pid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// survivalFacts is what an init says when it is still alive after a
// process of its own namespace sent it SIGKILL.
type survivalFacts struct {
	Target int       `json:"target"`
	Kill   killFacts `json:"kill"`
}

// sigwaitArgs ask a helper to wait for one signal on a dedicated thread.
type sigwaitArgs struct {
	Signal int           `json:"signal"`
	Wait   time.Duration `json:"wait"`
}

// tidFacts is the handshake of pid.sigwait: the waiting thread, by its tid
// in the helper's own PID namespace.
type tidFacts struct {
	TID int `json:"tid"`
}

// siginfoFacts is what signalfd said about the signal that arrived.
type siginfoFacts struct {
	Signo int    `json:"signo"`
	Code  int32  `json:"code"`
	PID   uint32 `json:"si_pid"`
	UID   uint32 `json:"si_uid"`
}

func init() {
	helper.Handle("pid.sigkill-self", func(struct{}) (any, error) {
		// The sender is a child of this helper, so in its PID namespace;
		// the target is this helper as the child sees it (1 if it is init).
		f := survivalFacts{Target: os.Getpid()}
		sender := helper.Spec{Action: "pid.kill", Args: killArgs{PID: f.Target, Signal: int(unix.SIGKILL)}}
		if err := helper.Run(context.Background(), sender, &f.Kill); err != nil {
			return nil, err
		}
		return f, nil
	})
	helper.Handle("pid.sigwait", sigwait)
}

var _ = prop.Register(prop.Property{
	ID: "pid.init-sigkill-immune",
	Title: "SIGKILL sent to the init of a new PID namespace by a process inside it does not kill it " +
		"(the init answers afterwards and exits 0)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: initSigkillImmune,
})

var _ = prop.Register(prop.Property{
	ID: "pid.sender-pid-zero",
	Title: "a signal sent from the ancestor PID namespace arrives inside with si_pid == 0 " +
		"(read with signalfd on a thread that blocks it)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: senderPIDZero,
})

// initSigkillImmune: the helper has a child of its own send it SIGKILL and
// answers only if it survived; the observer gets its wait status either way.
func initSigkillImmune(t *prop.Trial) error {
	c, err := t.Spawn(helper.Spec{Action: "pid.sigkill-self", Cloneflags: unix.CLONE_NEWPID})
	if err != nil {
		return err
	}
	var f survivalFacts
	err = c.Reply(&f)
	var noReply *helper.NoReplyError
	survived := err == nil
	if !survived && !(errors.As(err, &noReply) && noReply.Killed()) {
		return err
	}
	ws, err := c.Wait()
	if err != nil {
		return err
	}
	t.Inside("answered after the kill", survived)
	if survived {
		t.Inside(fmt.Sprintf("kill(%d, SIGKILL) by its child", f.Target), f.Kill.Result)
	}
	t.Host("helper", helper.Describe(ws))
	t.Expect(survived && ws.Exited() && ws.ExitStatus() == 0,
		"the init was killed by SIGKILL from a process of its own namespace (%s)", helper.Describe(ws))
	return nil
}

// sigwait blocks the signal on one locked thread only, tells the parent that
// thread's tid (handshake) and reads the signal there with signalfd: a
// signal sent to that thread (tgkill) stays pending on it, so the Go
// runtime's handler never sees it. The thread is never unlocked, so its
// changed mask dies with it.
func sigwait(a sigwaitArgs) (any, error) {
	type result struct {
		f   siginfoFacts
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := waitOnThisThread(a)
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

func waitOnThisThread(a sigwaitArgs) (siginfoFacts, error) {
	var f siginfoFacts
	var set unix.Sigset_t
	set.Val[(a.Signal-1)/64] |= 1 << ((a.Signal - 1) % 64)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return f, helper.Fail("sigprocmask(SIG_BLOCK)", err)
	}
	fd, err := unix.Signalfd(-1, &set, unix.SFD_CLOEXEC)
	if err != nil {
		return f, helper.Fail("signalfd", err)
	}
	defer unix.Close(fd)
	if err := helper.SendHandshake(tidFacts{TID: unix.Gettid()}); err != nil {
		return f, err
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(a.Wait.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return f, helper.Fail("poll signalfd", err)
		}
		if n == 0 {
			return f, fmt.Errorf("no signal %d within %v", a.Signal, a.Wait)
		}
		break
	}
	var si unix.SignalfdSiginfo
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&si)), unsafe.Sizeof(si))
	if _, err := unix.Read(fd, buf); err != nil {
		return f, helper.Fail("read signalfd", err)
	}
	return siginfoFacts{Signo: int(si.Signo), Code: si.Code, PID: si.Pid, UID: si.Uid}, nil
}

func senderPIDZero(t *prop.Trial) error {
	sig := unix.SIGUSR1
	a := sigwaitArgs{Signal: int(sig), Wait: 3 * time.Second}
	c, err := t.Spawn(helper.Spec{Action: "pid.sigwait", Args: a, Cloneflags: unix.CLONE_NEWPID, Handshake: true})
	if err != nil {
		return err
	}
	var hs tidFacts
	if err := c.Handshake(&hs); err != nil {
		return err
	}
	tid, err := hostTID(c.PID(), hs.TID)
	if err != nil {
		return err
	}
	if err := unix.Tgkill(c.PID(), tid, sig); err != nil {
		return fmt.Errorf("tgkill(%d, %d, %v): %w", c.PID(), tid, sig, err)
	}
	var f siginfoFacts
	if err := c.Reply(&f); err != nil {
		return err
	}
	t.Inside("waiting thread tid", hs.TID)
	t.Inside("ssi_signo", f.Signo)
	t.Inside("ssi_code", f.Code)
	t.Inside("ssi_pid", f.PID)
	t.Host("sender pid", os.Getpid())
	t.Host("tgkill target", fmt.Sprintf("%d/%d", c.PID(), tid))
	t.Expect(f.Signo == int(sig), "the thread read signal %d, not the %d sent", f.Signo, int(sig))
	t.Expect(f.PID == 0, "the signal from the ancestor namespace arrived with si_pid %d, not 0: the sender is visible inside", f.PID)
	return nil
}

// hostTID finds the thread of pid whose tid in its own PID namespace is
// inner (the last entry of its NSpid).
func hostTID(pid, inner int) (int, error) {
	tids, err := procfile.Threads(pid)
	if err != nil {
		return 0, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	for _, tid := range tids {
		st, err := procfile.ReadThreadStatus(pid, tid)
		if err != nil {
			continue // the thread exited
		}
		if n := len(st.NSpid); n > 0 && st.NSpid[n-1] == uint64(inner) {
			return tid, nil
		}
	}
	return 0, fmt.Errorf("process %d has no thread with tid %d in its PID namespace", pid, inner)
}
