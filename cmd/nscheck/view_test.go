package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/diag"
	"github.com/nscheck/nscheck/internal/report"
)

// An environment narrower than a root shell, made by wrapping the command
// line: nothing in it may be a failure (but the one run error it expects),
// every property the run skips must be predicted by env with the very same
// reason, and the properties named in skips must skip naming the cause.
type narrowEnv struct {
	name string
	// wrap is the command that runs this test binary (appended) as
	// nscheck.
	wrap []string
	env  []string
	// runError, when set, is in the one error the run must report.
	runError string
	// skips maps property IDs to what their skip reason must say.
	skips map[string]string
	// passes must pass (nscheck got itself a correct view).
	passes []string
	// code is the exit code of the run (passed through from the
	// re-executed nscheck when it got a view of its own).
	code int
}

func (e narrowEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	argv := append(append(slices.Clone(e.wrap[1:]), os.Args[0]), args...)
	cmd := exec.Command(e.wrap[0], argv...)
	cmd.Env = append(os.Environ(), e.env...)
	cmd.Dir = "/"
	return runCLI(t, cmd)
}

func TestNarrowEnvironmentsSkipNamedAndEnvPredictsThem(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	stale := []string{"unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork"}
	noSysAdmin := []string{"setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"}
	subset := []string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t proc -o hidepid=invisible,subset=pid proc /proc && exec "$@"`, "sh"}
	for _, e := range []narrowEnv{
		{
			// unshare --pid without --mount-proc: nscheck mounts its own.
			name: "stale-proc", wrap: stale,
			passes: []string{"cgroup.root-virtualized", "pid.child-is-init", "pid.distinct-ns", "time.monotonic-offset"},
		},
		{
			// ... and cannot: one run error, every property skipped.
			name: "stale-proc-no-cap-sys-admin", wrap: append(slices.Clone(stale), noSysAdmin...),
			runError: "unshare --mount-proc", code: exitFail,
			skips: map[string]string{"cgroup.root-virtualized": "/proc belongs to another PID namespace", "pid.child-is-init": "/proc belongs to another PID namespace"},
		},
		{
			// A hardened systemd service's /proc (ProcSubset=pid): nscheck
			// mounts a whole one of its own ...
			name: "proc-subset-pid", wrap: subset,
			passes: []string{"ipc.sysv-msgq-invisible", "ipc.same-key-independent", "time.monotonic-offset", "user.caps-inside-only", "uts.proc-hostname-local"},
		},
		{
			// ... and cannot: one run error, every property skipped.
			name: "proc-subset-pid-no-cap-sys-admin", wrap: append(slices.Clone(subset), noSysAdmin...),
			runError: "ProcSubset=all", code: exitFail,
			skips: map[string]string{"ipc.sysv-msgq-invisible": "subset=pid", "uts.hostname-local": "subset=pid"},
		},
		{
			name:   "net-ns-lo-down",
			wrap:   []string{"unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--mount-proc"},
			skips:  map[string]string{"net.ports-independent": "lo is down"},
			passes: []string{"net.loopback-only", "net.link-no-leak"},
		},
		{
			name: "no-cap-net-admin", wrap: []string{"setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"},
			skips: map[string]string{
				"net.host-links-hidden": "CAP_NET_ADMIN", "net.link-no-leak": "CAP_NET_ADMIN", "net.loopback-only": "CAP_NET_ADMIN",
				"net.ports-independent": "CAP_NET_ADMIN", "net.sysctl-per-ns": "CAP_NET_ADMIN", "net.veth-connects": "CAP_NET_ADMIN",
			},
			passes: []string{"net.abstract-socket-isolated"},
		},
		{
			// No /tmp: nscheck mounts a scratch tmpfs of its own.
			name: "no-tmp", wrap: []string{"env"}, env: []string{"TMPDIR=/nonexistent"},
			passes: []string{"mnt.tmpfs-mount-no-leak", "mnt.shared-propagates", "user.file-owner-mapped", "ipc.posix-mqueue-invisible"},
		},
		{
			// A read-only /tmp (where go test keeps this binary): the
			// same.
			name:   "read-only-tmp",
			wrap:   []string{"unshare", "--mount", "sh", "-c", `mount --make-rprivate / && mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && exec "$@"`, "sh"},
			passes: []string{"mnt.tmpfs-mount-no-leak", "mnt.umount-no-leak", "user.file-owner-mapped"},
		},
		{
			// No /tmp and no CAP_SYS_ADMIN to mount one: what needs a
			// directory skips, naming it; the rest runs.
			name: "no-tmp-no-cap-sys-admin", wrap: append([]string{"env"}, noSysAdmin...), env: []string{"TMPDIR=/nonexistent"},
			skips:  map[string]string{"mnt.tmpfs-mount-no-leak": "no scratch space", "user.file-owner-mapped": "no scratch space"},
			passes: []string{"uts.hostname-local"},
		},
	} {
		t.Run(e.name, func(t *testing.T) {
			res := e.run(t, "run", "--json", "-")
			rep, err := report.Decode(strings.NewReader(res.stdout))
			if err != nil {
				t.Fatalf("exit %d: %v\n%s", res.code, err, res.stderr)
			}
			if res.code != e.code {
				t.Errorf("run exit %d, want %d", res.code, e.code)
			}
			envRes := e.run(t, "env", "--json", "-")
			var d diag.Diagnosis
			if err := json.Unmarshal([]byte(envRes.stdout), &d); err != nil {
				t.Fatalf("env exit %d: %v\n%s", envRes.code, err, envRes.stderr)
			}
			switch {
			case e.runError == "" && len(rep.Errors) > 0:
				t.Errorf("run errors: %q", rep.Errors)
			case e.runError != "" && (len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], e.runError)):
				t.Errorf("run errors %q, want one naming %q", rep.Errors, e.runError)
			}
			byID := map[string]report.Result{}
			var skipped []string
			for _, r := range rep.Results {
				byID[r.ID] = r
				switch r.State {
				case report.Failed:
					t.Errorf("%s failed: %s", r.ID, r.Reason)
				case report.Skipped:
					skipped = append(skipped, r.ID+": "+r.Reason)
				}
			}
			for id, want := range e.skips {
				if r := byID[id]; r.State != report.Skipped || !strings.Contains(r.Reason, want) {
					t.Errorf("%s: %s (%s), want skipped naming %q", id, r.State, r.Reason, want)
				}
			}
			for _, id := range e.passes {
				if r := byID[id]; r.State != report.Passed {
					t.Errorf("%s: %s (%s), want passed", id, r.State, r.Reason)
				}
			}
			var predicted []string
			for _, p := range d.Predictions {
				predicted = append(predicted, p.ID+": "+p.Skip)
			}
			sort.Strings(skipped)
			sort.Strings(predicted)
			if !slices.Equal(skipped, predicted) {
				t.Errorf("env predicted\n  %s\nthe run skipped\n  %s", strings.Join(predicted, "\n  "), strings.Join(skipped, "\n  "))
			}
		})
	}
}
