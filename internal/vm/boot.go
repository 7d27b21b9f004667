package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/internal/report"
)

// BootOptions bound and observe one boot.
type BootOptions struct {
	// Timeout bounds the whole boot: start, catalog, power-off.
	Timeout time.Duration
	// HelloTimeout, when set, is how long init may take to say hello
	// before the boot counts as failed to start (the KVM attempt of
	// --accel auto uses it to fall back quickly).
	HelloTimeout time.Duration
	// Running is called when the guest's init answers.
	Running func()
	// TempDir is where the report socket is made ("" for the default).
	TempDir string
}

// Outcome is a boot that produced a report.
type Outcome struct {
	Report *report.Report
	// Hello is the time from starting QEMU to init answering; Total to
	// the report (power-off included when the guest managed it in time).
	Hello, Total time.Duration
}

// BootError is a boot that did not produce a report: a panic, a hang, a
// QEMU failure, a guest that said why it gave up.
type BootError struct {
	Reason string
	// Console is the last lines the kernel printed.
	Console []string
	// Started is set when the guest's init ran (said hello).
	Started bool
}

func (e *BootError) Error() string { return e.Reason }

// consoleLines is how many console lines a BootError keeps.
const consoleLines = 25

// powerOffGrace is how long a guest that sent its report has to power off
// before QEMU is killed.
const powerOffGrace = 10 * time.Second

// Boot runs QEMU with cfg (cfg.ReportSocket is set here) and returns the
// guest's report. QEMU is always killed and reaped before Boot returns. A
// guest panic, a hang past the deadline, a QEMU error or a guest error
// frame is a *BootError carrying the last console lines.
func Boot(ctx context.Context, cfg Config, o BootOptions) (*Outcome, error) {
	dir, err := os.MkdirTemp(o.TempDir, "nscheck-vm-")
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg.ReportSocket = filepath.Join(dir, "report.sock")
	ln, err := net.Listen("unix", cfg.ReportSocket)
	if err != nil {
		return nil, fmt.Errorf("boot: listen for the report channel: %w", err)
	}
	defer ln.Close()

	cmd := exec.Command(cfg.QEMU, cfg.Args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	var qemuErr tailBuffer
	cmd.Stderr = &qemuErr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot: start %s: %w", cfg.QEMU, err)
	}
	exited := make(chan error, 1)
	con := &console{}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { defer readers.Done(); con.read(stdout) }()
	go func() {
		readers.Wait() // Wait closes stdout: finish reading it first
		exited <- cmd.Wait()
	}()
	reaped := false
	defer func() {
		if !reaped {
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}()
	frames := make(chan Frame, 4)
	go readFrames(ln, frames)

	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	var hello <-chan time.Time
	if o.HelloTimeout > 0 {
		t := time.NewTimer(o.HelloTimeout)
		defer t.Stop()
		hello = t.C
	}
	fail := func(started bool, format string, args ...any) (*Outcome, error) {
		if !reaped { // stop QEMU first: its exit is reported once the console is read to the end
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			reaped = true
		}
		return nil, &BootError{Reason: fmt.Sprintf(format, args...), Console: con.tail(), Started: started}
	}
	out := &Outcome{}
	var exitErr error
	var drain <-chan time.Time // set once QEMU exited: the last frames get this long
	waitExit := exited
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				frames = nil
				if reaped {
					return fail(out.Hello > 0, "%s", exitReason(exitErr, out.Hello > 0, con, &qemuErr))
				}
				continue // QEMU's exit will say why
			}
			switch f.Kind {
			case Hello:
				out.Hello, hello = time.Since(start), nil
				if o.Running != nil {
					o.Running()
				}
			case ErrorFrame:
				return fail(true, "the guest gave up: %s", f.Payload)
			case ReportGzipFrame, ReportFrame:
				data, _, err := f.Report()
				if err != nil {
					return fail(true, "the guest's report: %v", err)
				}
				rep, err := report.Decode(bytes.NewReader(data))
				if err != nil {
					return fail(true, "the guest's report: %v", err)
				}
				out.Report = rep
				if !reaped { // let it power off by itself
					select {
					case <-exited:
						reaped = true
					case <-time.After(powerOffGrace):
					}
				}
				out.Total = time.Since(start)
				return out, nil
			}
		case exitErr = <-waitExit:
			reaped, waitExit = true, nil
			ln.Close() // unblocks an Accept that never came
			if frames == nil {
				return fail(out.Hello > 0, "%s", exitReason(exitErr, out.Hello > 0, con, &qemuErr))
			}
			drain = time.After(2 * time.Second)
		case <-drain:
			return fail(out.Hello > 0, "%s", exitReason(exitErr, out.Hello > 0, con, &qemuErr))
		case <-hello:
			return fail(false, "the kernel did not start init within %v", o.HelloTimeout)
		case <-deadline.C:
			what := "the kernel did not start init"
			if out.Hello > 0 {
				what = "no report from the guest"
			}
			if p := con.panicLine(); p != "" {
				return fail(out.Hello > 0, "%s within %v: the kernel panicked and hung: %s", what, o.Timeout, p)
			}
			return fail(out.Hello > 0, "%s within %v (hung?)", what, o.Timeout)
		case <-ctx.Done():
			return fail(out.Hello > 0, "interrupted: %v", ctx.Err())
		}
	}
}

// readFrames accepts QEMU's connection to the report socket and passes on
// every intact frame; it closes frames at the end of the stream.
func readFrames(ln net.Listener, frames chan<- Frame) {
	defer close(frames)
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	fr := NewFrameReader(c)
	for {
		f, err := fr.Next()
		if err != nil {
			return
		}
		frames <- f
	}
}

// exitReason says why QEMU ended without a report.
func exitReason(err error, started bool, con *console, qemuErr *tailBuffer) string {
	if p := con.panicLine(); p != "" {
		return "the kernel panicked: " + p
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := strings.TrimSpace(qemuErr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("qemu died of signal %v: %s", ws.Signal(), msg)
		}
		return fmt.Sprintf("qemu exited with status %d: %s", ee.ExitCode(), msg)
	}
	if !started {
		return "the machine stopped before the kernel started init (a broken or truncated image?)"
	}
	return "the guest stopped without sending a report"
}

// console keeps the tail of the guest's console and its first panic line.
type console struct {
	mu    sync.Mutex
	lines []string
	panic string
}

func (c *console) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = printableLine(line); line != "" {
			c.add(line)
		}
		if err != nil {
			return
		}
	}
}

var escapeRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|.)`)

// printableLine drops terminal escape sequences (the firmware clears the
// screen) and control characters from a console line.
func printableLine(s string) string {
	s = escapeRE.ReplaceAllString(s, "")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s))
}

func (c *console) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.panic == "" {
		if _, after, ok := strings.Cut(line, "Kernel panic - not syncing: "); ok {
			c.panic = after
		}
	}
	c.lines = append(c.lines, line)
	if len(c.lines) > 4*consoleLines {
		c.lines = append(c.lines[:0], c.lines[len(c.lines)-consoleLines:]...)
	}
}

func (c *console) tail() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.lines)
	return append([]string(nil), c.lines[max(0, n-consoleLines):]...)
}

func (c *console) panicLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.panic
}

// tailBuffer keeps the last 4 KiB written to it (QEMU's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
