package spawn

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
)

// The test binary is its own helper, as nscheck is.
func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

type pidFacts struct {
	PID int `json:"pid"`
}

func init() {
	helper.Handle("spawntest.two-phase", func(struct{}) (any, error) {
		if err := SendHandshake(pidFacts{PID: os.Getpid()}); err != nil {
			return nil, err
		}
		if err := AwaitGo(); err != nil {
			return nil, err
		}
		return "went", nil
	})
	helper.Handle("spawntest.fail-early", func(struct{}) (any, error) {
		return nil, helper.Fail("msgget", unix.ENOSPC)
	})
	helper.Handle("spawntest.handshake", func(struct{}) (any, error) {
		return nil, SendHandshake("hi")
	})
	helper.Handle("spawntest.linger", func(struct{}) (any, error) {
		if err := SendHandshake(pidFacts{PID: os.Getpid()}); err != nil {
			return nil, err
		}
		time.Sleep(10 * time.Second)
		return nil, nil
	})
	helper.Handle("spawntest.hang", func(struct{}) (any, error) {
		time.Sleep(time.Minute)
		return nil, nil
	})
	// spawntest.orphan-maker starts a detached child and returns its pid:
	// the child must outlive this helper.
	helper.Handle("spawntest.orphan-maker", func(struct{}) (any, error) {
		c, err := Start(context.Background(), helper.Spec{Action: "spawntest.linger"}, Options{Detached: true, Handshake: true})
		if err != nil {
			return nil, err
		}
		var f pidFacts
		if err := c.Handshake(&f); err != nil {
			return nil, err
		}
		return pidFacts{PID: c.PID()}, nil
	})
}

func TestHandshakeGoReply(t *testing.T) {
	c, err := Start(context.Background(), helper.Spec{Action: "spawntest.two-phase"}, Options{Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hs pidFacts
	if err := c.Handshake(&hs); err != nil {
		t.Fatal(err)
	}
	if hs.PID != c.PID() {
		t.Errorf("handshake pid %d, child is %d", hs.PID, c.PID())
	}
	c.Go()
	var got string
	if err := c.Reply(&got); err != nil || got != "went" {
		t.Fatalf("reply %q, %v", got, err)
	}
	ws, err := c.Wait()
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("wait: %s, %v", Describe(ws), err)
	}
}

func TestActionErrorInsteadOfHandshake(t *testing.T) {
	c, err := Start(context.Background(), helper.Spec{Action: "spawntest.fail-early"}, Options{Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v any
	err = c.Handshake(&v)
	var he *helper.Error
	if !errors.As(err, &he) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("handshake error = %v, want the action's msgget ENOSPC", err)
	}
}

func TestNoHandshakePipe(t *testing.T) {
	c, err := Start(context.Background(), helper.Spec{Action: "spawntest.handshake"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Reply(nil); err == nil {
		t.Fatal("SendHandshake without a pipe succeeded")
	}
	if err := c.Handshake(new(string)); err == nil {
		t.Fatal("Handshake on a child started without one succeeded")
	}
}

func TestKilledChildStatus(t *testing.T) {
	c, err := Start(context.Background(), helper.Spec{Action: "spawntest.hang"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Kill()
	err = c.Reply(nil)
	var nr *NoReplyError
	if !errors.As(err, &nr) || !nr.Killed() {
		t.Fatalf("reply error = %v, want a NoReplyError for SIGKILL", err)
	}
	ws, _ := c.Wait()
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %s, want killed by SIGKILL", Describe(ws))
	}
}

func TestTimeoutKills(t *testing.T) {
	c, err := Start(context.Background(), helper.Spec{Action: "spawntest.hang", Timeout: 200 * time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Reply(nil); err == nil {
		t.Fatal("a hung child answered")
	}
	if ws, _ := c.Wait(); !ws.Signaled() {
		t.Errorf("timed-out child: %s, want killed", Describe(ws))
	}
}

func TestDetachedOutlivesParent(t *testing.T) {
	var f pidFacts
	if err := helper.Run(context.Background(), helper.Spec{Action: "spawntest.orphan-maker"}, &f); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(f.PID, 0)
	if err != nil {
		t.Fatalf("the detached child %d died with its parent: %v", f.PID, err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		t.Errorf("the detached child %d died with its parent: %v", f.PID, err)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Errorf("kill the detached child: %v", err)
	}
}

func TestStartErrorOnRefusedClone(t *testing.T) {
	_, err := Start(context.Background(), helper.Spec{Action: "spawntest.hang", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_FS}, Options{})
	var se *helper.StartError
	if !errors.As(err, &se) || helper.Errno(err) != unix.EINVAL {
		t.Fatalf("err = %v, want StartError EINVAL", err)
	}
}

func TestDescribe(t *testing.T) {
	if got := Describe(syscall.WaitStatus(0)); got != "exit status 0" {
		t.Errorf("Describe(0) = %q", got)
	}
	if got := Describe(syscall.WaitStatus(9)); got != "killed by signal 9 (killed)" {
		t.Errorf("Describe(9) = %q", got)
	}
}
