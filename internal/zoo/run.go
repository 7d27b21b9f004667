package zoo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/internal/report"
)

// Runner enters environments and runs nscheck in them.
type Runner struct {
	// Nscheck is the static binary (make build's bin/nscheck).
	Nscheck string
	// Docker is the docker client and DockerHost its daemon's address;
	// Image the image FROM scratch whose entrypoint is nscheck.
	Docker, DockerHost, Image string
	// Out is a directory for each environment's raw output.
	Out string
	// Timeout bounds one environment.
	Timeout time.Duration
}

// Run enters e, runs `nscheck env --json -` and `nscheck run --json -` in
// it (for a VM, `nscheck vm`, whose report carries the guest's diagnosis)
// and decodes what they wrote.
func (r *Runner) Run(ctx context.Context, e Env) *Outcome {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	o := &Outcome{Env: e}
	defer func() { o.Seconds = time.Since(start).Seconds() }()
	if e.Kind == KindVM {
		r.runVM(ctx, o)
		return o
	}
	envOut, envErr, envCode, err := r.nscheck(ctx, e, "env", "--json", "-")
	if o.notStarted(envCode, envErr) {
		return o
	}
	o.EnvExit = envCode
	switch {
	case err != nil:
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck env: %v: %s", err, tail(envErr)))
	case envCode != 0 && envCode != 1: // 1: a namespace type is unavailable
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck env: exit %d: %s", envCode, tail(envErr)))
	default:
		d, derr := DecodeDiagnosis(envOut)
		if derr != nil {
			o.Errors = append(o.Errors, fmt.Sprintf("nscheck env: %v: %s", derr, tail(envErr)))
		}
		o.Diag = d
	}
	runOut, runErr, runCode, err := r.nscheck(ctx, e, "run", "--json", "-")
	o.RunExit, o.Stderr = runCode, tail(runErr)
	if err != nil {
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck run: %v: %s", err, tail(runErr)))
		return o
	}
	o.decodeRun(runOut, runCode, runErr)
	for _, b := range [][]byte{envErr, runErr} {
		if i := bytes.Index(b, []byte(leftBehind)); i >= 0 {
			o.Errors = append(o.Errors, strings.TrimSpace(string(b[bytes.LastIndexByte(b[:i], '\n')+1:])))
		}
	}
	return o
}

// decodeRun reads a run's report and checks its exit code against it.
func (o *Outcome) decodeRun(out []byte, code int, stderr []byte) {
	rep, err := report.Decode(bytes.NewReader(out))
	if err != nil {
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck run: exit %d, no report (%v): %s", code, err, tail(stderr)))
		return
	}
	o.Run = rep
	for _, e := range rep.Errors {
		if o.Env.Refusal != "" && o.Refused == "" && strings.Contains(e, o.Env.Refusal) {
			o.Refused = e
			continue
		}
		o.Errors = append(o.Errors, "run error: "+e)
	}
	if code != 0 && code != 1 && code != 4 {
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck run: exit %d: %s", code, tail(stderr)))
	}
}

// notStarted records that an environment allowed not to start did not
// (docker run exits 125-127 when it cannot create the container).
func (o *Outcome) notStarted(code int, stderr []byte) bool {
	if !o.Env.MayNotStart || o.Env.Kind != KindDocker || code < 125 || code > 127 {
		return false
	}
	o.NotStarted = tail(stderr)
	return true
}

// command is the command line that runs nscheck with args in e.
func (r *Runner) command(e Env, args ...string) []string {
	switch e.Kind {
	case KindDocker:
		name := fmt.Sprintf("nscheck-zoo-%s-%d", e.Name, time.Now().UnixNano())
		cmd := []string{r.Docker, "-H", r.DockerHost, "run", "--rm", "--name", name}
		cmd = append(cmd, e.Prefix...)
		return append(append(cmd, r.Image), args...)
	default:
		return append(append(append([]string{}, e.Prefix...), r.Nscheck), args...)
	}
}

// nscheck runs one nscheck command in e; err is set only when it could not
// run or was stopped by the deadline (a non-zero exit is code).
func (r *Runner) nscheck(ctx context.Context, e Env, args ...string) (stdout, stderr []byte, code int, err error) {
	argv := r.command(e, args...)
	var name string
	if e.Kind == KindDocker {
		name = argv[5]
	}
	stdout, stderr, code, err = run(ctx, argv, e.Env)
	if name != "" && err != nil {
		// The client was killed; the container may live on.
		_, _, _, _ = run(context.Background(), []string{r.Docker, "-H", r.DockerHost, "rm", "-f", name}, nil)
	}
	if err == nil {
		r.save(e.Name+"."+args[0]+".json", stdout)
		r.save(e.Name+"."+args[0]+".stderr", stderr)
	}
	return stdout, stderr, code, err
}

// runVM boots the guest and reads its report.
func (r *Runner) runVM(ctx context.Context, o *Outcome) {
	dir := filepath.Join(r.Out, o.Env.Name)
	if err := os.RemoveAll(dir); err != nil {
		o.Errors = append(o.Errors, err.Error())
		return
	}
	deadline, _ := ctx.Deadline()
	argv := []string{r.Nscheck, "vm", "--kernel", o.Env.Kernel, "--out", dir,
		"--timeout", time.Until(deadline).Truncate(time.Second).String()}
	if o.Env.Append != "" {
		argv = append(argv, "--append", o.Env.Append)
	}
	if o.Env.Cgroup != "" {
		argv = append(argv, "--cgroup", o.Env.Cgroup)
	}
	_, stderr, code, err := run(ctx, argv, nil)
	o.RunExit, o.Stderr = code, tail(stderr)
	if err != nil {
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck vm: %v: %s", err, tail(stderr)))
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		o.Errors = append(o.Errors, fmt.Sprintf("nscheck vm: exit %d, %d reports in %s: %s", code, len(files), dir, tail(stderr)))
		return
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		o.Errors = append(o.Errors, err.Error())
		return
	}
	o.decodeRun(data, code, stderr)
	if o.Run == nil {
		return
	}
	if len(o.Run.Environment) == 0 {
		o.Errors = append(o.Errors, "the guest's report has no diagnosis (environment): the predictions cannot be compared")
		return
	}
	d, err := DecodeDiagnosis(o.Run.Environment)
	if err != nil {
		o.Errors = append(o.Errors, "the guest's report: "+err.Error())
		return
	}
	o.Diag = d
}

func (r *Runner) save(name string, data []byte) {
	if r.Out != "" {
		_ = os.WriteFile(filepath.Join(r.Out, name), data, 0o644)
	}
}

// run runs argv in its own process group, killed as a whole at the
// deadline so that nothing it started outlives it.
func run(ctx context.Context, argv []string, env []string) (stdout, stderr []byte, code int, err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out.Bytes(), errb.Bytes(), -1, fmt.Errorf("%s: stopped at the deadline: %w", argv[0], ctx.Err())
	case errors.As(err, &exit):
		return out.Bytes(), errb.Bytes(), exit.ExitCode(), nil
	case err != nil:
		return out.Bytes(), errb.Bytes(), -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	if left := groupMembers(cmd.Process.Pid); len(left) > 0 {
		// Processes of the group outlived the command: nscheck (or the
		// environment) left something behind. They are ours to end.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		errb.WriteString(fmt.Sprintf("\n%s %s (pids %v, killed)\n", argv[0], leftBehind, left))
	}
	return out.Bytes(), errb.Bytes(), 0, nil
}

// leftBehind marks, in a command's stderr, processes of its group that
// outlived it.
const leftBehind = "left processes behind"

// groupMembers lists the processes in process group pgid.
func groupMembers(pgid int) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces; skip past ')'
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		var state string
		var pid, ppid, pgrp int
		if _, err := fmt.Sscanf(string(data[i+1:]), " %s %d %d", &state, &ppid, &pgrp); err != nil || pgrp != pgid {
			continue
		}
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(f)), "%d", &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// tail is the last lines of a command's stderr, for a message.
func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	return strings.Join(lines, " | ")
}
