package helper

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type pidFacts struct {
	PID int `json:"pid"`
}

func init() {
	Handle("test.two-phase", func(struct{}) (any, error) {
		if err := SendHandshake(pidFacts{PID: os.Getpid()}); err != nil {
			return nil, err
		}
		if err := AwaitGo(); err != nil {
			return nil, err
		}
		return "went", nil
	})
	Handle("test.fail-early", func(struct{}) (any, error) {
		return nil, Fail("msgget", unix.ENOSPC)
	})
	Handle("test.handshake", func(struct{}) (any, error) {
		return nil, SendHandshake("hi")
	})
	Handle("test.linger", func(struct{}) (any, error) {
		if err := SendHandshake(pidFacts{PID: os.Getpid()}); err != nil {
			return nil, err
		}
		time.Sleep(10 * time.Second)
		return nil, nil
	})
	// test.orphan-maker starts a detached helper and returns its pid: the
	// helper must outlive this one.
	Handle("test.orphan-maker", func(struct{}) (any, error) {
		c, err := Spawn(context.Background(), Spec{Action: "test.linger", Detached: true, Handshake: true})
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
	c, err := Spawn(context.Background(), Spec{Action: "test.two-phase", Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if Live() == 0 {
		t.Error("a spawned helper is not in the live set: KillAll would not see it")
	}
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
	if err := c.Release(); err != nil {
		t.Error(err)
	}
	assertNoneLive(t)
}

func TestActionErrorInsteadOfHandshake(t *testing.T) {
	c, err := Spawn(context.Background(), Spec{Action: "test.fail-early", Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v any
	err = c.Handshake(&v)
	var he *Error
	if !errors.As(err, &he) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("handshake error = %v, want the action's msgget ENOSPC", err)
	}
}

func TestNoHandshakePipe(t *testing.T) {
	c, err := Spawn(context.Background(), Spec{Action: "test.handshake"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Reply(nil); err == nil {
		t.Fatal("SendHandshake without a pipe succeeded")
	}
	if err := c.Handshake(new(string)); err == nil {
		t.Fatal("Handshake on a helper started without one succeeded")
	}
}

func TestKilledHelperStatus(t *testing.T) {
	c, err := Spawn(context.Background(), Spec{Action: "test.hang"})
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

func TestSpawnedTimeoutKills(t *testing.T) {
	c, err := Spawn(context.Background(), Spec{Action: "test.hang", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Reply(nil); err == nil {
		t.Fatal("a hung helper answered")
	}
	if ws, _ := c.Wait(); !ws.Signaled() {
		t.Errorf("timed-out helper: %s, want killed", Describe(ws))
	}
}

func TestKillAllSeesSpawned(t *testing.T) {
	c, err := Spawn(context.Background(), Spec{Action: "test.hang", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	KillAll()
	if ws, _ := c.Wait(); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("after KillAll: %s, want killed by SIGKILL", Describe(ws))
	}
}

func TestDetachedOutlivesParent(t *testing.T) {
	var f pidFacts
	if err := Run(context.Background(), Spec{Action: "test.orphan-maker"}, &f); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(f.PID, 0)
	if err != nil {
		t.Fatalf("the detached helper %d died with its parent: %v", f.PID, err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		t.Errorf("the detached helper %d died with its parent: %v", f.PID, err)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Errorf("kill the detached helper: %v", err)
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
