package helper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/internal/vforkexec"
)

// Process is a running (or held) helper.
type Process struct {
	spec     Spec
	proc     *os.Process
	wait     func() (*os.ProcessState, error) // reaps the helper, once
	pidfd    int
	request  *os.File
	replyR   *os.File
	hsFile   *os.File
	hs       *bufio.Reader
	deadline time.Time
	stderr   *CappedBuffer

	replied  bool
	reply    Reply
	replyErr error

	done    chan struct{}
	state   *os.ProcessState
	waitErr error
	goOnce  sync.Once
	once    sync.Once
	relErr  error
	stopCtx func() bool
}

var live sync.Map // *Process -> struct{}

// KillAll sends SIGKILL to every helper this process started and has not yet
// reaped. For interrupted runs; Release still reaps them.
func KillAll() {
	live.Range(func(k, _ any) bool {
		k.(*Process).Kill()
		return true
	})
}

// Live counts the helpers started and not yet reaped.
func Live() int {
	n := 0
	live.Range(func(_, _ any) bool { n++; return true })
	return n
}

// Start clones the helper, sends its request and waits for its reply. On
// success the helper is either finished (Hold false) or held; either way the
// caller must call Release. On error nothing is left running.
//
// A reply that carries an action error is returned as that *Error together
// with the Process, which must still be released.
func Start(ctx context.Context, s Spec) (*Process, error) {
	p, err := Spawn(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := p.readReply(ctx); err != nil {
		p.Kill()
		p.Release()
		return nil, err
	}
	if p.reply.Err != nil {
		return p, p.reply.Err
	}
	return p, nil
}

// Spawn clones the helper and sends its request, and returns without
// waiting for the reply: the caller may read a handshake (Spec.Handshake),
// act, let the action go on (Go) and then read the reply (Reply) and the
// wait status (Wait). The caller must Release (or Close) the Process. A
// clone the kernel refused is a *StartError.
func Spawn(ctx context.Context, s Spec) (*Process, error) {
	if s.Fork && s.Cloneflags&unix.CLONE_NEWUSER == 0 {
		return nil, fmt.Errorf("helper %s: Fork needs CLONE_NEWUSER (os/exec forks only a child that gets a user namespace)", s.Action)
	}
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("pipe: %w", err)
		}
		opened = append(opened, r, w)
		return r, w, nil
	}
	repR, repW, err := pipe()
	if err != nil {
		return nil, err
	}
	reqR, reqW, err := pipe()
	if err != nil {
		return nil, err
	}
	p := &Process{spec: s, pidfd: -1, request: reqW, replyR: repR, done: make(chan struct{})}
	p.deadline = time.Now().Add(s.timeout())
	cmd := Command(s, repW, reqR)
	childEnds := []*os.File{repW, reqR}
	if s.Handshake {
		hsR, hsW, err := pipe()
		if err != nil {
			return nil, err
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, hsW)
		cmd.Env = append(cmd.Env, handshakeEnvVar+"=1")
		p.hsFile, p.hs = hsR, bufio.NewReader(hsR)
		childEnds = append(childEnds, hsW)
	}
	if !s.Detached {
		p.stderr = NewCappedBuffer(StderrCap)
	}

	// The guard (see internal/nsguard) is taken on the thread that clones:
	// the child starts in that thread's namespaces.
	runtime.LockOSThread()
	guard, err := nsguard.Observe(s.Cloneflags)
	var req []byte
	if err == nil {
		req, err = requestLine(s, guard)
	}
	if err == nil {
		cmd.SysProcAttr.Cloneflags &^= ignoredFlags
		if !s.Fork && vforkexec.Eligible(s.Cloneflags, s.UIDMappings, s.GIDMappings, s.Credential) {
			err = p.vfork(cmd)
		} else if err = foreignProcMaps(cmd.SysProcAttr); err == nil {
			if err = p.exec(cmd); err != nil {
				err = execError(s.Cloneflags, cmd, err)
			}
		}
	}
	runtime.UnlockOSThread()
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	live.Store(p, struct{}{})
	go func() {
		p.state, p.waitErr = p.wait()
		close(p.done)
	}()
	p.stopCtx = context.AfterFunc(ctx, p.Kill)

	if _, err := reqW.Write(req); err != nil {
		p.Close()
		return nil, fmt.Errorf("send request to helper %d: %w", p.proc.Pid, err)
	}
	return p, nil
}

// execError is the error of an os/exec start. With Pdeathsig, Go's child
// compares getppid() with the parent's pid and, when they differ (always,
// in a new PID namespace, where the parent is 0), signals itself by the
// pid getpid() gives it; that kill failing with ESRCH means getpid()
// names no process of the child's own PID namespace: the kernel's PID
// namespace is broken, a guard's report (nsguard.Error) rather than a
// refusal to create namespaces.
func execError(flags uintptr, cmd *exec.Cmd, err error) error {
	if flags&unix.CLONE_NEWPID != 0 && cmd.SysProcAttr.Pdeathsig != 0 && errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("clone(%s): %w", FlagNames(flags), nsguard.PIDBrokenAtClone("kill(getpid(), SIGKILL) after PR_SET_PDEATHSIG"))
	}
	return NewStartError(flags, err)
}

// SkipOp is the Op of a wire Error that is a skip rather than a failure:
// what was asked cannot be done here, and Msg says why (package prop turns
// it into a skipped verdict, on whichever side of a process boundary it
// arrives).
const SkipOp = "skip"

// foreignProcMaps refuses an os/exec start that would have Go write a new
// user namespace's id maps while /proc is not a proc of this PID
// namespace: Go writes them to /proc/<pid>/uid_map with the child's PID
// in this namespace, which in such a /proc is another process's (a helper
// that is init of a new PID namespace, in the host's mount namespace, sees
// the host's /proc). vforkexec's children map themselves through
// /proc/self, which is right in any proc.
func foreignProcMaps(attr *syscall.SysProcAttr) error {
	if attr.Cloneflags&unix.CLONE_NEWUSER == 0 || (attr.UidMappings == nil && attr.GidMappings == nil) {
		return nil
	}
	why, err := procfile.Foreign()
	if err != nil {
		return fmt.Errorf("check /proc before writing id maps: %w", err)
	}
	if why == "" {
		return nil
	}
	return &Error{Op: SkipOp, Msg: "this helper's new user namespace would get its id maps from Go's os/exec, which writes them through /proc/<pid>, and " +
		why + ", where that PID names another process (a helper maps its own user namespace only without a time namespace or credentials, on amd64 and arm64)"}
}

// exec starts the helper with os/exec: credentials, id maps the parent
// must write, time namespaces, Spec.Fork.
func (p *Process) exec(cmd *exec.Cmd) error {
	if p.stderr != nil {
		cmd.Stderr = p.stderr
	}
	if p.spec.Detached {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	cmd.SysProcAttr.PidFD = &p.pidfd
	if err := cmd.Start(); err != nil {
		return err
	}
	p.proc = cmd.Process
	p.wait = func() (*os.ProcessState, error) {
		err := cmd.Wait()
		return cmd.ProcessState, err
	}
	return nil
}

// vfork starts the helper that cmd describes with vforkexec: for a user
// namespace that maps root to this process the child maps itself and
// shares this process's memory where os/exec would copy it, and every
// start saves what os/exec does that a helper does not need. Stdin and
// stdout are /dev/null, stderr is captured (or /dev/null for a detached
// helper), as exec does. A refused clone is a *StartError.
func (p *Process) vfork(cmd *exec.Cmd) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	errW, errR := null, (*os.File)(nil)
	if p.stderr != nil {
		if errR, errW, err = os.Pipe(); err != nil {
			return fmt.Errorf("pipe: %w", err)
		}
	}
	files := append([]*os.File{null, null, errW}, cmd.ExtraFiles...)
	pid, pidfd, err := vforkexec.Start(vforkexec.Attr{Path: cmd.Path, Argv: cmd.Args, Env: cmd.Env, Files: files,
		Cloneflags: cmd.SysProcAttr.Cloneflags, Detached: p.spec.Detached})
	if errR != nil {
		errW.Close()
	}
	if err != nil {
		if errR != nil {
			errR.Close()
		}
		return NewStartError(p.spec.Cloneflags, err)
	}
	p.pidfd = pidfd
	p.proc, _ = os.FindProcess(pid) // always succeeds on Unix
	copied := make(chan struct{})
	if errR != nil {
		go func() {
			_, _ = io.Copy(p.stderr, errR)
			close(copied)
		}()
	} else {
		close(copied)
	}
	p.wait = func() (*os.ProcessState, error) {
		state, err := p.proc.Wait()
		// As exec.Cmd's WaitDelay: a process the helper left behind may
		// hold stderr open.
		select {
		case <-copied:
		case <-time.After(cmd.WaitDelay):
		}
		if errR != nil {
			errR.Close()
		}
		switch {
		case err != nil:
			return state, err
		case !state.Success():
			return state, &exec.ExitError{ProcessState: state}
		}
		return state, nil
	}
	return nil
}

// readReply reads the reply once, under the helper's deadline.
func (p *Process) readReply(ctx context.Context) error {
	if p.replied {
		return p.replyErr
	}
	p.replied = true
	p.replyErr = p.readReplyOnce(ctx)
	p.replyR.Close()
	return p.replyErr
}

func (p *Process) readReplyOnce(ctx context.Context) error {
	if err := p.replyR.SetReadDeadline(p.deadline); err != nil {
		return fmt.Errorf("set reply deadline: %w", err)
	}
	data, err := io.ReadAll(p.replyR)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return p.timedOut()
	case ctx.Err() != nil:
		return fmt.Errorf("helper %s: %w", p.spec.Action, ctx.Err())
	case err != nil:
		return fmt.Errorf("read reply of helper %s: %w", p.spec.Action, err)
	case len(data) == 0:
		return &NoReplyError{Action: p.spec.Action, Status: p.statusWithin(time.Second), Stderr: p.stderrTail()}
	}
	if err := json.Unmarshal(data, &p.reply); err != nil {
		return fmt.Errorf("decode reply of helper %s: %w", p.spec.Action, err)
	}
	return nil
}

func (p *Process) timedOut() error {
	p.Kill()
	return fmt.Errorf("helper %s timed out after %v", p.spec.Action, p.spec.timeout())
}

// Handshake reads the helper's handshake (SendHandshake, Spec.Handshake)
// into v. When the helper answered without one (its action failed first),
// the action's error is returned.
func (p *Process) Handshake(v any) error {
	if p.hs == nil {
		return fmt.Errorf("helper %s was started without a handshake pipe (Spec.Handshake)", p.spec.Action)
	}
	if err := p.hsFile.SetReadDeadline(p.deadline); err != nil {
		return fmt.Errorf("set handshake deadline: %w", err)
	}
	line, err := p.hs.ReadBytes('\n')
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return p.timedOut()
	case errors.Is(err, io.EOF):
		if rerr := p.Reply(nil); rerr != nil {
			return rerr
		}
		return fmt.Errorf("helper %s answered without its handshake", p.spec.Action)
	case err != nil:
		return fmt.Errorf("read handshake of helper %s: %w", p.spec.Action, err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("decode handshake of helper %s: %w", p.spec.Action, err)
	}
	return nil
}

// Go lets an action blocked in AwaitGo go on: one byte on the request
// pipe. A held helper stays held until Release (closing the pipe, which
// lets AwaitGo go on as well).
func (p *Process) Go() {
	p.goOnce.Do(func() { _, _ = p.request.Write([]byte{goAhead}) })
}

// Reply waits for the helper's reply (a Spawned helper's; Start has read
// it already) and decodes its facts into v when v is non-nil. An action's
// error comes back as the *Error it sent; a helper that exited without
// answering as a *NoReplyError.
func (p *Process) Reply(v any) error {
	if err := p.readReply(context.Background()); err != nil {
		return err
	}
	if p.reply.Err != nil {
		return p.reply.Err
	}
	if v == nil {
		return nil
	}
	return p.Facts(v)
}

// NoReplyError says that a helper exited without answering; Status says how.
type NoReplyError struct {
	Action string
	Status syscall.WaitStatus
	Stderr string
}

func (e *NoReplyError) Error() string {
	return fmt.Sprintf("helper %s exited without answering (%s)%s", e.Action, Describe(e.Status), e.Stderr)
}

// Killed reports whether the helper died of SIGKILL.
func (e *NoReplyError) Killed() bool {
	return e.Status.Signaled() && e.Status.Signal() == syscall.SIGKILL
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

// Wait lets the helper go on and exit (it closes the request pipe, as
// Release does), waits for it to exit, killing it when it outlives its
// deadline, and returns its wait status. It does not free the Process's
// resources: Release or Close still must be called.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	p.request.Close()
	grace := max(time.Until(p.deadline), time.Second)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
		<-p.done
		return p.status(), fmt.Errorf("helper %s did not exit within %v", p.spec.Action, grace)
	}
	return p.status(), nil
}

// statusWithin waits up to d for the helper to exit and returns its status
// (zero when it did not exit in time).
func (p *Process) statusWithin(d time.Duration) syscall.WaitStatus {
	select {
	case <-p.done:
		return p.status()
	case <-time.After(d):
		return 0
	}
}

func (p *Process) status() syscall.WaitStatus {
	if p.state == nil {
		return 0
	}
	ws, _ := p.state.Sys().(syscall.WaitStatus)
	return ws
}

func (p *Process) stderrTail() string {
	if p.stderr == nil {
		return ""
	}
	return p.stderr.Tail()
}

// PID is the helper's pid in the caller's PID namespace.
func (p *Process) PID() int { return p.proc.Pid }

// PidFD is the helper's pidfd (valid until Release).
func (p *Process) PidFD() int { return p.pidfd }

// InnerPID is getpid() as the helper saw it.
func (p *Process) InnerPID() int { return p.reply.PID }

// Facts decodes the helper's facts into v.
func (p *Process) Facts(v any) error {
	if len(p.reply.Facts) == 0 {
		return fmt.Errorf("helper %s sent no facts", p.spec.Action)
	}
	if err := json.Unmarshal(p.reply.Facts, v); err != nil {
		return fmt.Errorf("decode facts of %s: %w", p.spec.Action, err)
	}
	return nil
}

// Release lets a held helper exit, waits for it (killing it if it outlives
// its deadline) and reaps it. It is safe to call more than once. A helper
// that exits non-zero is a harness error.
func (p *Process) Release() error {
	p.once.Do(func() {
		p.request.Close()
		grace := time.Until(p.deadline)
		if grace < time.Second {
			grace = time.Second
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			p.Kill()
			<-p.done
			p.relErr = fmt.Errorf("helper %s did not exit after release within %v", p.spec.Action, grace)
		}
		if p.stopCtx != nil {
			p.stopCtx()
		}
		live.Delete(p)
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
		}
		p.replyR.Close()
		if p.hsFile != nil {
			p.hsFile.Close()
		}
		if p.relErr == nil && p.waitErr != nil {
			p.relErr = fmt.Errorf("helper %s: %v%s", p.spec.Action, p.waitErr, p.stderrTail())
		}
	})
	return p.relErr
}

// Close kills the helper if it still runs and reaps it (Release without
// the grace and without its error): the cleanup of a helper whose end
// the caller no longer waits for.
func (p *Process) Close() {
	p.Kill()
	_ = p.Release()
}

// Kill sends SIGKILL to the helper unless it has been reaped (through its
// pidfd, so never to a recycled pid).
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if p.pidfd >= 0 {
		if err := unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0); err == nil {
			return
		}
	}
	_ = p.proc.Kill()
}

// Run starts a helper, decodes its facts into out (when non-nil) and reaps
// it: the one-shot form of Start.
func Run(ctx context.Context, s Spec, out any) error {
	s.Hold = false
	p, err := Start(ctx, s)
	if p == nil {
		return err
	}
	relErr := p.Release()
	if err != nil {
		return err
	}
	if out != nil {
		if err := p.Facts(out); err != nil {
			return err
		}
	}
	return relErr
}

// RequestLine is the request a helper started for s reads on fd 4: one
// line of JSON (without the namespace guard, which Spawn adds).
func RequestLine(s Spec) ([]byte, error) { return requestLine(s, nil) }

func requestLine(s Spec, guard nsguard.Set) ([]byte, error) {
	args, err := json.Marshal(s.Args)
	if err != nil {
		return nil, fmt.Errorf("marshal args of %s: %w", s.Action, err)
	}
	req, err := json.Marshal(Request{Action: s.Action, Args: args, Hold: s.Hold, Guard: guard.String()})
	if err != nil {
		return nil, fmt.Errorf("marshal request: %w", err)
	}
	return append(req, '\n'), nil
}

// NewStartError is the StartError of a helper with flags that exec could
// not start: err with exec's "fork/exec" wrapper taken off, so that the
// errno is what Refused and the diagnosis see.
func NewStartError(flags uintptr, err error) *StartError {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &StartError{Flags: flags, Err: err}
}
