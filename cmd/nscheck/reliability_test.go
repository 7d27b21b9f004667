package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/report"
)

// startHanging starts `nscheck run` with the test-only property whose helper
// never answers, and waits until that helper exists.
func startHanging(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{"run", "--focus", hangID, "--helper-timeout", "1m"}, args...)...)
	cmd.Env = append(os.Environ(), cliEnv+"=1", hangEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for len(hangingHelpers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the hanging helper never started:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd, &out
}

// hangingHelpers lists the pids of live test.hang helpers.
func hangingHelpers() []string {
	entries, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err == nil && bytes.HasPrefix(b, []byte("nscheck-helper\x00test.hang\x00")) {
			pids = append(pids, strings.Split(e, "/")[2])
		}
	}
	return pids
}

// reapUntilGone reaps orphans reparented to this subreaper until no helper
// is left, or fails after a bound.
func reapUntilGone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		left := hangingHelpers()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("helpers still alive: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("nscheck did not exit after the signal")
		return -1
	}
}

func TestHungHelperFailsItsPropertyWithinDeadline(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "r.json")
	cmd := exec.Command(os.Args[0], "run", "--focus", hangID, "--helper-timeout", "300ms", "--json", path)
	cmd.Env = append(os.Environ(), cliEnv+"=1", hangEnv+"=1")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitFail {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	rep, err := report.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].State != report.Failed ||
		!strings.Contains(rep.Results[0].Reason, "timed out after 300ms") {
		t.Errorf("want the hung property failed with a timeout reason, got %+v", rep.Results)
	}
	if left := hangingHelpers(); len(left) > 0 {
		t.Errorf("helpers left: %v", left)
	}
}

func TestSignalStopsRunReportsAndCleansUp(t *testing.T) {
	needRoot(t)
	for _, sig := range []syscall.Signal{unix.SIGINT, unix.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.json")
			cmd, out := startHanging(t, "--json", path)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, cmd); code != exitFail {
				t.Errorf("exit %d after %v, want 1:\n%s", code, sig, out)
			}
			rep, err := report.ReadFile(path)
			if err != nil {
				t.Fatalf("no report after %v: %v\n%s", sig, err, out)
			}
			if len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0], "stopped early") {
				t.Errorf("report does not say the run was stopped: %v", rep.Errors)
			}
			reapUntilGone(t)
		})
	}
}

func TestSIGKILLTakesHelpersAlong(t *testing.T) {
	needRoot(t)
	cmd, _ := startHanging(t)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd)
	// Pdeathsig kills every helper whose parent died; the sandbox's PID
	// namespace takes its inner helpers along.
	reapUntilGone(t)
}

func TestWholeRunTimeout(t *testing.T) {
	needRoot(t)
	cmd, out := startHanging(t, "--timeout", "2s")
	if code := waitExit(t, cmd); code != exitFail {
		t.Errorf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "stopped early") {
		t.Errorf("no run error in:\n%s", out)
	}
	reapUntilGone(t)
}

// hostileRun runs `nscheck run --json -` under a wrapper command (unshare,
// setpriv ...) and returns the report; nothing may fail.
func hostileRun(t *testing.T, wrapper ...string) *report.Report {
	t.Helper()
	if _, err := exec.LookPath(wrapper[0]); err != nil {
		t.Skipf("%s not installed (apt-get install util-linux)", wrapper[0])
	}
	args := append(append([]string{}, wrapper[1:]...), os.Args[0], "run", "--json", "-")
	cmd := exec.Command(wrapper[0], args...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	rep, err := report.Decode(&out)
	if err != nil {
		t.Fatalf("no report (exit %d): %v\n%s", cmd.ProcessState.ExitCode(), err, errb.String())
	}
	for _, r := range rep.Results {
		if r.State == report.Failed {
			t.Errorf("%s failed: %s", r.ID, r.Reason)
		}
		if r.State == report.Skipped && r.Reason == "" {
			t.Errorf("%s skipped without a reason", r.ID)
		}
	}
	if len(rep.Errors) > 0 {
		t.Errorf("run errors: %v", rep.Errors)
	}
	return rep
}

// Started inside a container-like sandbox (its own user, mount and PID
// namespaces), nscheck is not root of the host: it runs rootless.
func TestInsideContainerLikeSandbox(t *testing.T) {
	needRoot(t)
	rep := hostileRun(t, "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc")
	if rep.Privilege.Mode != "rootless" {
		t.Errorf("privilege mode %q inside a user namespace, want rootless", rep.Privilege.Mode)
	}
	if rep.Summary.Passed == 0 {
		t.Error("nothing passed inside the sandbox")
	}
}

// With /proc/sys read-only (as container runtimes mount it) nothing fails.
func TestProcSysReadOnly(t *testing.T) {
	needRoot(t)
	hostileRun(t, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -o bind,ro /proc/sys /proc/sys && exec "$@"`, "sh")
}

// An unprivileged uid runs rootless; whatever it cannot do is skipped.
func TestUnprivilegedUID(t *testing.T) {
	needRoot(t)
	exe := os.Args[0]
	if st, err := os.Stat(exe); err != nil || st.Mode().Perm()&0o005 != 0o005 {
		t.Skipf("test binary %s is not world-executable; cannot run it as uid 65534", exe)
	}
	rep := hostileRun(t, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
	if rep.Privilege.Mode != "rootless" || rep.Privilege.EUID != 65534 {
		t.Errorf("privilege = %+v, want rootless euid 65534", rep.Privilege)
	}
}

// The guard itself: a probe that changes the hostname, creates a SysV queue
// and mounts a tmpfs, run with a disposable UTS+IPC+mount namespace playing
// the host, must fail the run with each change named.
func TestHostGuardCatchesALeakingProbe(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("unshare", "--uts", "--ipc", "--mount", "--propagation", "private",
		os.Args[0], "run", "--focus", leakID, "--json", "-")
	cmd.Env = append(os.Environ(), cliEnv+"=1", leakEnv+"=1", "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitFail {
		t.Errorf("exit %d, want 1: %s", code, errb.String())
	}
	rep, err := report.Decode(&out)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	all := strings.Join(rep.Errors, "\n")
	for _, want := range []string{"hostname: appeared: leaked-by-a-probe", "sysvipc/msg: appeared", "mounts: appeared"} {
		if !strings.Contains(all, want) {
			t.Errorf("guard did not name %q; errors:\n%s", want, all)
		}
	}
}
