package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/vforkexec"
)

// Process is a running (or held) helper.
type Process struct {
	spec     Spec
	proc     *os.Process
	wait     func() error // reaps the helper, once
	pidfd    int
	request  *os.File
	reply    Reply
	deadline time.Time
	stderr   *CappedBuffer

	done    chan struct{}
	waitErr error
	once    sync.Once
	relErr  error
	stopCtx func() bool
}

var live sync.Map // *Process -> struct{}

// KillAll sends SIGKILL to every helper this process started and has not yet
// reaped. For interrupted runs; Release still reaps them.
func KillAll() {
	live.Range(func(k, _ any) bool {
		k.(*Process).kill()
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
	if s.Fork && s.Cloneflags&unix.CLONE_NEWUSER == 0 {
		return nil, fmt.Errorf("helper %s: Fork needs CLONE_NEWUSER (os/exec forks only a child that gets a user namespace)", s.Action)
	}
	req, err := RequestLine(s)
	if err != nil {
		return nil, err
	}

	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		repR.Close()
		repW.Close()
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer repR.Close()

	p := &Process{spec: s, pidfd: -1, request: reqW, stderr: NewCappedBuffer(StderrCap), done: make(chan struct{})}
	p.deadline = time.Now().Add(s.timeout())
	cmd := Command(s, repW, reqR)
	if !s.Fork && vforkexec.Eligible(s.Cloneflags, s.UIDMappings, s.GIDMappings, s.Credential) {
		err = p.vfork(cmd)
	} else {
		err = p.exec(cmd)
	}
	repW.Close()
	reqR.Close()
	if err != nil {
		reqW.Close()
		return nil, NewStartError(s.Cloneflags, err)
	}
	live.Store(p, struct{}{})
	go func() {
		p.waitErr = p.wait()
		close(p.done)
	}()
	p.stopCtx = context.AfterFunc(ctx, p.kill)

	if _, err := reqW.Write(req); err != nil {
		p.kill()
		p.Release()
		return nil, fmt.Errorf("send request to helper %d: %w", p.proc.Pid, err)
	}
	if err := p.readReply(ctx, repR); err != nil {
		p.kill()
		p.Release()
		return nil, err
	}
	if p.reply.Err != nil {
		return p, p.reply.Err
	}
	return p, nil
}

// exec starts the helper with os/exec: credentials, id maps the parent
// must write, time namespaces, Spec.Fork.
func (p *Process) exec(cmd *exec.Cmd) error {
	cmd.Stderr = p.stderr
	cmd.SysProcAttr.PidFD = &p.pidfd
	if err := cmd.Start(); err != nil {
		return err
	}
	p.proc, p.wait = cmd.Process, cmd.Wait
	return nil
}

// vfork starts the helper that cmd describes with vforkexec: for a user
// namespace that maps root to this process the child maps itself and
// shares this process's memory where os/exec would copy it, and every
// start saves what os/exec does that a helper does not need. Stdin and
// stdout are /dev/null, stderr is captured, as exec does.
func (p *Process) vfork(cmd *exec.Cmd) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	files := append([]*os.File{null, null, errW}, cmd.ExtraFiles...)
	pid, pidfd, err := vforkexec.Start(vforkexec.Attr{Path: cmd.Path, Argv: cmd.Args, Env: cmd.Env, Files: files, Cloneflags: cmd.SysProcAttr.Cloneflags})
	errW.Close()
	if err != nil {
		errR.Close()
		return err
	}
	p.pidfd = pidfd
	p.proc, _ = os.FindProcess(pid) // always succeeds on Unix
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(p.stderr, errR)
		close(copied)
	}()
	p.wait = func() error {
		state, err := p.proc.Wait()
		// As exec.Cmd's WaitDelay: a process the helper left behind may
		// hold stderr open.
		select {
		case <-copied:
		case <-time.After(cmd.WaitDelay):
		}
		errR.Close()
		switch {
		case err != nil:
			return err
		case !state.Success():
			return &exec.ExitError{ProcessState: state}
		}
		return nil
	}
	return nil
}

func (p *Process) readReply(ctx context.Context, r *os.File) error {
	if err := r.SetReadDeadline(p.deadline); err != nil {
		return fmt.Errorf("set reply deadline: %w", err)
	}
	data, err := io.ReadAll(r)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("helper %s timed out after %v", p.spec.Action, p.spec.timeout())
	case ctx.Err() != nil:
		return fmt.Errorf("helper %s: %w", p.spec.Action, ctx.Err())
	case err != nil:
		return fmt.Errorf("read reply of helper %s: %w", p.spec.Action, err)
	case len(data) == 0:
		<-p.waitDone(time.Second)
		return fmt.Errorf("helper %s exited without answering (%v)%s", p.spec.Action, p.waitErr, p.stderr.Tail())
	}
	if err := json.Unmarshal(data, &p.reply); err != nil {
		return fmt.Errorf("decode reply of helper %s: %w", p.spec.Action, err)
	}
	return nil
}

// waitDone returns a channel closed when the helper is reaped or d passed.
func (p *Process) waitDone(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		select {
		case <-p.done:
		case <-time.After(d):
		}
	}()
	return ch
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
			p.kill()
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
		if p.relErr == nil && p.waitErr != nil {
			p.relErr = fmt.Errorf("helper %s: %v%s", p.spec.Action, p.waitErr, p.stderr.Tail())
		}
	})
	return p.relErr
}

func (p *Process) kill() {
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
// line of JSON.
func RequestLine(s Spec) ([]byte, error) {
	args, err := json.Marshal(s.Args)
	if err != nil {
		return nil, fmt.Errorf("marshal args of %s: %w", s.Action, err)
	}
	req, err := json.Marshal(Request{Action: s.Action, Args: args, Hold: s.Hold})
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
