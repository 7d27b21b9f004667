package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nscheck/nscheck/internal/diag"
	"github.com/nscheck/nscheck/internal/report"
)

func kconfigFixture(name string) string {
	return filepath.Join("..", "..", "fixtures", "kconfig", name)
}

func TestEnvHere(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "env.json")
	res := nscheck(t, "env", "--json", path)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var d diag.Diagnosis
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Config.Source == "" || !strings.Contains(res.stdout, "config "+d.Config.Source) {
		t.Errorf("no config source named (tried %q):\n%s", d.Config.Tried, res.stdout)
	}
	for _, n := range d.Namespaces {
		if !n.Available || n.Max == "" || !n.Root.OK || !n.Unprivileged.OK {
			t.Errorf("%s: %+v", n.Type, n)
		}
	}
	if len(d.Namespaces) != 8 || !strings.Contains(res.stdout, "8 of 8 namespace types available") {
		t.Errorf("not all eight types available:\n%s", res.stdout)
	}
}

func TestConfigCommand(t *testing.T) {
	res := nscheck(t, "config", kconfigFixture("debian-6.1-no-user-ns.config"))
	if res.code != exitFail || !strings.Contains(res.stdout, "MISSING: CONFIG_USER_NS is not set") || !strings.Contains(res.stdout, "scripts/config --enable USER_NS") {
		t.Errorf("USER_NS unset: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = nscheck(t, "config", "--json", "-", kconfigFixture("debian-6.12-cloud-amd64.config.gz"))
	var rep configReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 || rep.Version != "6.12.117" || len(rep.Missing) != 0 {
		t.Errorf("6.12 gzip: exit %d err %v %+v\n%s", res.code, err, rep, res.stderr)
	}
	if res := nscheck(t, "config", kconfigFixture("old-5.4-header.config")); res.code != exitFail || !strings.Contains(res.stdout, "need kernel 5.6 or newer") {
		t.Errorf("5.4: exit %d\n%s", res.code, res.stdout)
	}
	if res := nscheck(t, "config", "--ignore", "time", kconfigFixture("old-5.4-header.config")); res.code != 0 {
		t.Errorf("5.4 --ignore time: exit %d\n%s", res.code, res.stdout)
	}
}

func TestConfigBadInputExit2(t *testing.T) {
	for _, args := range [][]string{
		{"config"},
		{"config", "a", "b"},
		{"config", kconfigFixture("no-such-file")},
		{"config", kconfigFixture("truncated.config")},
		{"config", kconfigFixture("truncated.config.gz")},
		{"config", kconfigFixture("garbage.bin")},
		{"config", kconfigFixture("garbage.gz")},
		{"config", "--ignore", "bogus", kconfigFixture("debian-6.1-cloud-amd64.config")},
		{"env", "--config", kconfigFixture("garbage.gz"), "--no-probe"},
		{"env", "extra"},
	} {
		res := nscheck(t, args...)
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		if res.code != exitUsage || len(lines) != 1 || lines[0] == "" || strings.Contains(res.stderr, "goroutine") {
			t.Errorf("nscheck %q: exit %d, stderr %q", args, res.code, res.stderr)
		}
	}
}

// inUserNS runs this test binary as nscheck inside a fresh user namespace
// (ids 0..size-1 mapped to the same host ids) after writing 0 to
// /proc/sys/user/max_<zero>_namespaces there: the limits are per user
// namespace, so the host's stay untouched. With asUID set, nscheck runs as
// that unprivileged uid inside it.
func inUserNS(t *testing.T, zero string, size int, asUID string, args ...string) result {
	t.Helper()
	exe := os.Args[0]
	if asUID != "" {
		exe = worldExecutableCopy(t)
	}
	script := `echo 0 > /proc/sys/user/max_` + zero + `_namespaces && exec "$@"`
	argv := []string{"-c", script, "sh"}
	if asUID != "" {
		argv = append(argv, "setpriv", "--reuid", asUID, "--regid", asUID, "--clear-groups")
	}
	cmd := exec.Command("/bin/sh", append(append(argv, exe), args...)...)
	cmd.Dir = "/"
	idmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: size}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: idmap, GidMappings: idmap, GidMappingsEnableSetgroups: true,
	}
	res := runCLI(t, cmd)
	t.Logf("nscheck %q with user.max_%s_namespaces=0 said (exit %d):\n%s", args, zero, res.code, res.stderr)
	return res
}

// worldExecutableCopy copies this test binary where any uid can execute it
// (go test's own directory is private to root).
func worldExecutableCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nscheck-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "nscheck")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeRun decodes the JSON report a run wrote to stdout and its
// environment.
func decodeRun(t *testing.T, res result) (*report.Report, diag.Diagnosis) {
	t.Helper()
	rep, err := report.Decode(strings.NewReader(res.stdout))
	if err != nil {
		t.Fatalf("exit %d: %v\n%s", res.code, err, res.stderr)
	}
	var d diag.Diagnosis
	if err := json.Unmarshal(rep.Environment, &d); err != nil {
		t.Fatalf("environment: %v", err)
	}
	return rep, d
}

// assertSkippedFor asserts every result was skipped (never passed or
// failed) with the knob and its fix in the reason.
func assertSkippedFor(t *testing.T, rep *report.Report, knob string, min int) {
	t.Helper()
	if len(rep.Results) < min {
		t.Fatalf("%d results, want at least %d", len(rep.Results), min)
	}
	for _, r := range rep.Results {
		if r.State != report.Skipped {
			t.Errorf("%s: %s (%s), want skipped", r.ID, r.State, r.Reason)
			continue
		}
		if !strings.Contains(r.Reason, knob+" is 0 in this user namespace") || !strings.Contains(r.Reason, "sysctl -w "+knob+"=") {
			t.Errorf("%s: reason lacks the knob or its fix: %q", r.ID, r.Reason)
		}
	}
}

func namespaceOf(d diag.Diagnosis, typ string) diag.Namespace {
	for _, n := range d.Namespaces {
		if n.Type == typ {
			return n
		}
	}
	return diag.Namespace{}
}

// user.max_uts_namespaces=0: the UTS properties are skipped, naming the
// knob and the fix; the diagnosis in the report says the same.
func TestInjectedMaxUTSZeroSkips(t *testing.T) {
	needRoot(t)
	res := inUserNS(t, "uts", 1, "", "run", "--label-filter", "ns:uts && needs:userns", "--json", "-")
	if res.code != exitNothing {
		t.Errorf("exit %d, want %d (all skipped: nothing verified, nothing failed)\n%s", res.code, exitNothing, res.stderr)
	}
	rep, d := decodeRun(t, res)
	assertSkippedFor(t, rep, "user.max_uts_namespaces", 2)
	uts := namespaceOf(d, "uts")
	if uts.Available || uts.Cause == nil || uts.Cause.Knob != "user.max_uts_namespaces" || uts.Root.Errno != "ENOSPC" {
		t.Errorf("environment: uts %+v", uts)
	}
	if !namespaceOf(d, "ipc").Available {
		t.Errorf("environment: ipc unavailable too")
	}
}

// user.max_user_namespaces=0: `nscheck env` as root there names the knob.
func TestInjectedMaxUserZeroEnv(t *testing.T) {
	needRoot(t)
	res := inUserNS(t, "user", 1, "", "env", "--json", "-")
	if res.code != exitFail {
		t.Errorf("exit %d, want 1 (a type is unavailable)", res.code)
	}
	var d diag.Diagnosis
	if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
		t.Fatalf("%v\n%s", err, res.stderr)
	}
	user := namespaceOf(d, "user")
	if user.Available || user.Cause == nil || user.Cause.Knob != "user.max_user_namespaces" || !strings.Contains(res.stderr, "sysctl -w user.max_user_namespaces=") {
		t.Errorf("user: %+v\n%s", user, res.stderr)
	}
	if len(d.Unavailable()) != 1 {
		t.Errorf("unavailable: %+v", d.Unavailable())
	}
}

// An unprivileged run where user namespaces are denied: every property that
// needs one is skipped with the knob and the fix, none passes or fails.
func TestInjectedUnprivilegedUsernsDeniedSkips(t *testing.T) {
	needRoot(t)
	res := inUserNS(t, "user", 65536, "1000", "run", "--label-filter", "needs:userns && ns: containsAny {uts, ipc, pid, mnt}", "--json", "-")
	if res.code != exitNothing {
		t.Errorf("exit %d, want %d (all skipped)\n%s", res.code, exitNothing, res.stderr)
	}
	rep, d := decodeRun(t, res)
	if rep.Privilege.Mode != "rootless" || rep.Privilege.EUID != 1000 {
		t.Errorf("privilege %+v", rep.Privilege)
	}
	assertSkippedFor(t, rep, "user.max_user_namespaces", 8)
	for _, n := range d.Namespaces {
		if n.Available || n.Unprivileged == nil || n.Unprivileged.Errno != "ENOSPC" || n.Cause == nil || n.Cause.Knob != "user.max_user_namespaces" {
			t.Errorf("environment: %s %+v", n.Type, n)
		}
	}
}
