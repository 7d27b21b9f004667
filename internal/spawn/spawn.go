// Package spawn starts a helper (see package helper) with more control than
// helper.Start gives, for checks whose sequencing the one-request, one-reply
// protocol cannot express:
//
//   - a handshake: the child gets a third pipe as fd 5 and reports a first
//     result on it mid-action ([SendHandshake]), before its reply;
//   - a go-ahead: the action can block until the parent calls [Child.Go]
//     ([AwaitGo]), so the parent acts between the handshake and the reply
//     (send a signal, start a sibling);
//   - detached children: no parent-death signal, so they outlive their
//     parent (an orphan, the processes an init leaves behind);
//   - the wait status, so a check can tell "killed by SIGKILL" from a
//     harness failure.
//
// The wire protocol is helper's: the child is built with [helper.Command],
// gets a [helper.Request] on fd 4 and answers with a [helper.Reply] on fd 3;
// the action on the child side is an ordinary one registered with
// helper.Handle.
//
//	parent (Start)                              child (an action)
//	──────────────                              ─────────────────
//	fd 4 ── Request ──────────────────────────▶ action runs
//	fd 5 ◀── one JSON line ── SendHandshake     (Options.Handshake only)
//	Go(): close fd 4 ──────── EOF ────────────▶ AwaitGo returns
//	fd 3 ◀── Reply ───────────────────────────  action returns
//	Wait(): exit status ◀────────────────────── exit
package spawn

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/prop"
)

// Options say what a child gets beyond what helper.Start gives.
type Options struct {
	// Handshake gives the child a pipe on fd 5 for SendHandshake.
	Handshake bool
	// Detached starts the child without a parent-death signal and with
	// stderr on /dev/null: it outlives its parent. Whoever owns it kills
	// it (Close) or bounds its life itself.
	Detached bool
}

// Child is a helper started by Start.
type Child struct {
	spec     helper.Spec
	cmd      *exec.Cmd
	pidfd    int
	request  *os.File
	reply    *os.File
	hsFile   *os.File
	hs       *bufio.Reader
	timeout  time.Duration
	deadline time.Time
	stderr   *helper.CappedBuffer

	done    chan struct{}
	waitErr error
	stopCtx func() bool
	goOnce  sync.Once
	clOnce  sync.Once
}

// Start clones and execs the helper of s (flags as given: see ForTrial for
// a trial's rules) and sends its request. The caller must Close the child.
// A clone refused by the kernel is a *helper.StartError.
func Start(ctx context.Context, s helper.Spec, o Options) (*Child, error) {
	req, err := helper.RequestLine(s)
	if err != nil {
		return nil, err
	}
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			opened = append(opened, r, w)
		}
		return r, w, err
	}
	repR, repW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	reqR, reqW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("pipe: %w", err)
	}
	c := &Child{spec: s, pidfd: -1, request: reqW, reply: repR, done: make(chan struct{})}
	c.timeout = s.Timeout
	if c.timeout <= 0 {
		c.timeout = helper.DefaultTimeout
	}
	c.deadline = time.Now().Add(c.timeout)

	cmd := helper.Command(s, repW, reqR)
	cmd.SysProcAttr.PidFD = &c.pidfd
	childEnds := []*os.File{repW, reqR}
	if o.Handshake {
		hsR, hsW, err := pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, hsW)
		cmd.Env = append(cmd.Env, envHandshake+"=1")
		c.hsFile, c.hs = hsR, bufio.NewReader(hsR)
		childEnds = append(childEnds, hsW)
	}
	if o.Detached {
		cmd.SysProcAttr.Pdeathsig = 0
	} else {
		c.stderr = helper.NewCappedBuffer(helper.StderrCap)
		cmd.Stderr = c.stderr
	}
	err = cmd.Start()
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		closeAll()
		return nil, helper.NewStartError(s.Cloneflags, err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	c.stopCtx = context.AfterFunc(ctx, c.Kill)
	if _, err := reqW.Write(req); err != nil {
		c.Close()
		return nil, fmt.Errorf("send request to helper %d: %w", cmd.Process.Pid, err)
	}
	return c, nil
}

// ForTrial starts a child as the trial says (t.Flags: the flag under test
// withheld in a control, a user namespace when rootless) and closes it when
// the trial ends.
func ForTrial(t *prop.Trial, s helper.Spec, o Options) (*Child, error) {
	t.Flags(&s)
	c, err := Start(t.Context(), s, o)
	if c != nil {
		t.Defer(c.Close)
	}
	return c, err
}

// Nested returns the clone flags for a helper that a helper of trial t
// starts itself: the flag under test is withheld in a control, and no user
// namespace is added (the parent helper is already root in its own).
func Nested(t *prop.Trial, flags uintptr) uintptr {
	if !t.Isolated {
		flags &^= t.Prop.Flag
	}
	return flags
}

// PID is the child's pid in the caller's PID namespace.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// PidFD is the child's pidfd (valid until Close).
func (c *Child) PidFD() int { return c.pidfd }

// Handshake reads the child's handshake into v. When the child answered
// without one (its action failed first), the action's error is returned.
func (c *Child) Handshake(v any) error {
	if c.hs == nil {
		return fmt.Errorf("helper %s was started without a handshake pipe", c.spec.Action)
	}
	if err := c.hsFile.SetReadDeadline(c.deadline); err != nil {
		return fmt.Errorf("set handshake deadline: %w", err)
	}
	line, err := c.hs.ReadBytes('\n')
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.timedOut()
	case errors.Is(err, io.EOF):
		if rerr := c.Reply(nil); rerr != nil {
			return rerr
		}
		return fmt.Errorf("helper %s answered without its handshake", c.spec.Action)
	case err != nil:
		return fmt.Errorf("read handshake of helper %s: %w", c.spec.Action, err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("decode handshake of helper %s: %w", c.spec.Action, err)
	}
	return nil
}

// Go lets an action blocked in AwaitGo go on (it closes the request pipe;
// a held helper is released too).
func (c *Child) Go() {
	c.goOnce.Do(func() { c.request.Close() })
}

// Reply reads the child's reply and decodes its facts into v (when non-nil).
// An action's error comes back as the *helper.Error it sent.
func (c *Child) Reply(v any) error {
	if err := c.reply.SetReadDeadline(c.deadline); err != nil {
		return fmt.Errorf("set reply deadline: %w", err)
	}
	data, err := io.ReadAll(c.reply)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.timedOut()
	case err != nil:
		return fmt.Errorf("read reply of helper %s: %w", c.spec.Action, err)
	case len(data) == 0:
		return &NoReplyError{Action: c.spec.Action, Status: c.statusWithin(time.Second), Stderr: c.stderrTail()}
	}
	var rep helper.Reply
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("decode reply of helper %s: %w", c.spec.Action, err)
	}
	if rep.Err != nil {
		return rep.Err
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(rep.Facts, v); err != nil {
		return fmt.Errorf("decode facts of %s: %w", c.spec.Action, err)
	}
	return nil
}

// NoReplyError says that a child exited without answering; Status says how.
type NoReplyError struct {
	Action string
	Status syscall.WaitStatus
	Stderr string
}

func (e *NoReplyError) Error() string {
	return fmt.Sprintf("helper %s exited without answering (%s)%s", e.Action, Describe(e.Status), e.Stderr)
}

// Killed reports whether the child died of SIGKILL.
func (e *NoReplyError) Killed() bool {
	return e.Status.Signaled() && e.Status.Signal() == syscall.SIGKILL
}

// Wait lets the child go on (Go), waits for it to exit, killing it when it
// outlives its deadline, and returns its wait status.
func (c *Child) Wait() (syscall.WaitStatus, error) {
	c.Go()
	grace := max(time.Until(c.deadline), time.Second)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.Kill()
		<-c.done
		return c.status(), fmt.Errorf("helper %s did not exit within %v", c.spec.Action, grace)
	}
	return c.status(), nil
}

// Kill sends SIGKILL to the child unless it has been reaped (through its
// pidfd, so never to a recycled pid).
func (c *Child) Kill() {
	if c.exited() {
		return
	}
	if c.pidfd < 0 || unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0) != nil {
		_ = c.cmd.Process.Kill()
	}
}

func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close kills the child if it still runs, reaps it and frees its pipes.
// Safe to call more than once.
func (c *Child) Close() {
	c.clOnce.Do(func() {
		c.Go()
		c.Kill()
		<-c.done
		c.stopCtx()
		c.reply.Close()
		if c.hsFile != nil {
			c.hsFile.Close()
		}
		if c.pidfd >= 0 {
			unix.Close(c.pidfd)
		}
	})
}

func (c *Child) timedOut() error {
	c.Kill()
	return fmt.Errorf("helper %s timed out after %v", c.spec.Action, c.timeout)
}

// statusWithin waits up to d for the child to exit and returns its status
// (zero when it did not exit in time).
func (c *Child) statusWithin(d time.Duration) syscall.WaitStatus {
	select {
	case <-c.done:
		return c.status()
	case <-time.After(d):
		return 0
	}
}

func (c *Child) status() syscall.WaitStatus {
	if c.cmd.ProcessState == nil {
		return 0
	}
	ws, _ := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws
}

func (c *Child) stderrTail() string {
	if c.stderr == nil {
		return ""
	}
	return c.stderr.Tail()
}

// Describe renders a wait status as "exit status 0" or "killed by signal 9 (killed)".
func Describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
