package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/hostsnap"
	"github.com/nscheck/nscheck/internal/report"
)

const cliEnv = "NSCHECK_TEST_AS_CLI"

// The test binary doubles as nscheck: with cliEnv set it runs the command
// line it was given, so each test gets a fresh process (Ginkgo runs once
// per process) without a separate build.
func TestMain(m *testing.M) {
	helper.Main()
	if os.Getenv(cliEnv) == "1" {
		maybeInstallFilter()
		os.Exit(dispatch(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

func nscheck(t *testing.T, args ...string) result {
	t.Helper()
	return nscheckEnv(t, nil, args...)
}

// nscheckEnv runs the CLI with extra environment variables.
func nscheckEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env...)
	return runCLI(t, cmd)
}

// runCLI runs cmd (this test binary, or a wrapper that execs it) as the
// nscheck command line and collects its exit code and output.
func runCLI(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, cliEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run nscheck %v: %v", cmd.Args, err)
	}
	return result{code, out.String(), errb.String()}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs the root catalog: needs root")
	}
}

var coreFour = []string{
	"uts.hostname-local", "ipc.sysv-msgq-invisible", "pid.child-is-init", "mnt.proc-mount-no-leak",
	"uts.distinct-ns", "ipc.distinct-ns", "pid.distinct-ns", "mnt.distinct-ns",
}

func TestRunCoreFourPassWithControls(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "r.json")
	res := nscheck(t, "run", "--json", path, "--label-filter", "ns: containsAny {uts, ipc, pid, mnt}")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	rep := readReport(t, path) // checked against the JSON Schema
	if rep.Schema != report.Schema || rep.Privilege.Mode != "root" || rep.Kernel.Version == "" || rep.StartedAt.IsZero() {
		t.Errorf("report header incomplete: %+v", rep)
	}
	byID := map[string]report.Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
	}
	for _, id := range coreFour {
		r, ok := byID[id]
		if !ok {
			t.Errorf("%s missing from the report", id)
			continue
		}
		if r.State != report.Passed || r.Control != "detected" {
			t.Errorf("%s: state %s control %s (%s)", id, r.State, r.Control, r.Reason)
		}
		if r.Evidence["inside"] == nil || r.Evidence["host"] == nil || r.Evidence["control"] == nil {
			t.Errorf("%s: evidence lacks a side: %v", id, r.Evidence)
		}
		if !strings.Contains(res.stdout, "PASS  "+id) {
			t.Errorf("text report lacks a PASS line for %s", id)
		}
	}
	if !strings.Contains(res.stdout, strconv.Itoa(rep.Summary.Passed)+" passed, 0 failed, 0 skipped") {
		t.Errorf("no summary line in:\n%s", res.stdout)
	}
}

// A full run leaves the host as it found it and leaves no process behind.
func TestRunLeavesHostUntouched(t *testing.T) {
	needRoot(t)
	// Orphaned helpers would be reparented to this process: none may be.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	before, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	res := nscheck(t, "run", "--no-guard")
	after, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	if res.code != 0 {
		t.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if d := hostsnap.Diff(before, after); len(d) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(d, "\n"))
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
}

// children lists the processes whose parent is this one (orphans included,
// as this process is a subreaper), by scanning /proc/*/stat.
func children(t *testing.T) []string {
	t.Helper()
	entries, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue // exited meanwhile
		}
		// After "pid (comm)": state, then ppid.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == self {
			out = append(out, e)
		}
	}
	return out
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{"bogus"},
		{"run", "--no-such-flag"},
		{"run", "--label-filter", "(("},
		{"run", "--focus", "("},
		{"run", "extra-arg"},
		{"run", "--json", "/nonexistent-dir/r.json"},
		{"run", "--html", "/etc/passwd/r.html"},
		{"run", "--timeout", "-1s"},
		{"run", "--every", "-1h"},
		{"list", "extra"},
		{"list", "--json", "--markdown"},
		{"vm", "--out", "x"},
		{"vm", "--kernel", "/nonexistent/vmlinuz", "--out", "x"},
		{"vm", "--kernel", "../../fixtures/sysvipc/msg", "--out", "x"},
		{"vm", "--kernel", "../../fixtures/bzimage", "--out", "x"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--out", "x", "--accel", "hvf"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--out", "x", "--cgroup", "unified"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--out", "x", "--init", "/bin/sh"},
		{"vm", "--modules", "../../fixtures/bzimage", "--kernel", "../../fixtures/bzimage", "--out", "x"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--modules", "../../fixtures/sysvipc", "--out", "x"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--out", "x", "--arch", "riscv64"},
		{"vm", "--kernel", "../../fixtures/bzimage/debian-6.1.0-57-cloud-amd64.head", "--out", "x", "--arch", "arm64"},
		{"matrix"},
		{"matrix", "../../fixtures/sysvipc/msg"},
		{"matrix", "../../fixtures/bad-reports/other-schema.json"},
		{"matrix", "/nonexistent.json"},
		{"matrix", "../../fixtures/reports/root.json", "--html", "/nonexistent-dir/m.html"},
		{"diff", "../../fixtures/reports/run-host.json"},
		{"diff", "../../fixtures/reports/run-host.json", "../../fixtures/bad-reports/other-schema.json"},
	}
	for _, args := range cases {
		res := nscheck(t, args...)
		if res.code != exitUsage {
			t.Errorf("nscheck %q: exit %d, want 2", args, res.code)
		}
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		if len(lines) != 1 || lines[0] == "" || strings.Contains(res.stderr, "goroutine") {
			t.Errorf("nscheck %q: want one clear line on stderr, got %q", args, res.stderr)
		}
	}
}

func TestHelpExits0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"list", "--help"}} {
		res := nscheck(t, args...)
		if res.code != 0 || !strings.Contains(res.stdout, "Usage") {
			t.Errorf("nscheck %q: exit %d, stdout %q", args, res.code, res.stdout)
		}
	}
}

func TestListShowsCatalog(t *testing.T) {
	res := nscheck(t, "list")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, id := range coreFour {
		if !strings.Contains(res.stdout, id) {
			t.Errorf("list lacks %s", id)
		}
	}
}

func TestJUnitReport(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "j.xml")
	res := nscheck(t, "run", "--junit", path, "--focus", "uts.hostname-local")
	if res.code != 0 {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("junit is not XML: %v", err)
	}
	found := false
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			found = found || strings.Contains(c.Name, "uts.hostname-local")
		}
	}
	if !found {
		t.Errorf("junit lacks uts.hostname-local:\n%s", data)
	}
}
