package zoo

import (
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/prop"
)

func TestNormalizeIgnoresWhatDiffersBetweenProcesses(t *testing.T) {
	a := "stat /proc/1234/ns/pid: ns/pid inode 4026532248, not 4026531836; /tmp/nscheck-99/x  (took 12ms)"
	b := "stat /proc/77/ns/pid: ns/pid inode 4026532999, not 4026531836; /tmp/nscheck-3/y (took 3ms)"
	if Normalize(a) != Normalize(b) {
		t.Errorf("Normalize(%q) = %q\nNormalize(%q) = %q", a, Normalize(a), b, Normalize(b))
	}
	c1 := "cgroup /nscheck-zoo/bd3c83ddce0e653726bc0cf40c262ea2bb0caa4f1b9328c2d668ef9a97115e05: mount cgroup2"
	c2 := "cgroup /nscheck-zoo/51b528447603ea3f58ada6fd8e5557aa9c9f3077555f6d35b187a744d8dfaaaa: mount cgroup2"
	if Normalize(c1) != Normalize(c2) {
		t.Errorf("two containers' cgroup paths differ after Normalize: %q, %q", Normalize(c1), Normalize(c2))
	}
	if Normalize("CAP_SYS_TIME is missing") == Normalize("CAP_NET_ADMIN is missing") {
		t.Error("Normalize erased the capability's name")
	}
}

func TestNamesCause(t *testing.T) {
	for reason, want := range map[string]bool{
		"":                        false,
		"skipped":                 false,
		"operation not permitted": false,
		"CAP_SYS_TIME is not in nscheck's bounding set; fix: do not drop it": true,
		"user.max_uts_namespaces is 0 in this user namespace":                true,
	} {
		if got := NamesCause(reason); got != want {
			t.Errorf("NamesCause(%q) = %v, want %v", reason, got, want)
		}
	}
}

func TestPredictionMismatches(t *testing.T) {
	results := []report.Result{
		{ID: "a", State: report.Skipped, Reason: "needs CAP_X (pid 12)"},
		{ID: "b", State: report.Skipped, Reason: "needs CAP_Y"},
		{ID: "c", State: report.Passed},
		{ID: "d", State: report.Skipped, Reason: "loopback is down"},
	}
	pred := []prop.Prediction{
		{ID: "a", Skip: "needs CAP_X (pid 99)"}, // same after normalising
		{ID: "b", Skip: "needs CAP_Z"},          // another reason
		{ID: "c", Skip: "needs CAP_W"},          // did not skip
		// d: not predicted
	}
	got := strings.Join(PredictionMismatches(pred, results), "\n")
	for _, want := range []string{"b: env predicted the skip", "c: env predicted a skip", "d: run skipped it"} {
		if !strings.Contains(got, want) {
			t.Errorf("mismatches lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a:") {
		t.Errorf("a's reasons differ only in a pid, yet it is a mismatch:\n%s", got)
	}
}

func TestViolationsTellBrokenFromHarnessErrors(t *testing.T) {
	o := &Outcome{Run: &report.Report{Results: []report.Result{
		{ID: "p", State: report.Passed},
		{ID: "leak", State: report.Failed, Reason: "isolation broken: the host sees it", Evidence: map[string]any{"leaks": []string{"x"}}},
		{ID: "err", State: report.Failed, Reason: "harness error in err: open /proc/1/status: ENOENT"},
		{ID: "mute", State: report.Skipped, Reason: "skipped"},
	}}, Diag: &Diagnosis{Predictions: []prop.Prediction{{ID: "mute", Skip: "skipped"}}}, Errors: []string{"run error: host changed"}}
	c := o.Count()
	if c != (Counts{Passed: 1, Skipped: 1, Failed: 1, Errors: 2}) {
		t.Errorf("Count = %+v", c)
	}
	got := strings.Join(o.Violations(), "\n")
	for _, want := range []string{"harness error: run error", "leak: false verdict", "err: harness error", "mute: skip reason names no cause"} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack %q:\n%s", want, got)
		}
	}
	// An environment this machine cannot create is recorded, not a violation.
	ns := &Outcome{Env: Env{MayNotStart: true, Kind: KindDocker}}
	if !ns.notStarted(125, []byte("runc create failed: unable to apply caps")) || ns.Violations() != nil {
		t.Errorf("docker exit 125 of a MayNotStart environment: NotStarted=%q, violations %v", ns.NotStarted, ns.Violations())
	}
	if (&Outcome{Env: Env{Kind: KindDocker}}).notStarted(125, nil) {
		t.Error("an environment that must start was allowed not to")
	}
}

func TestRefusalIsExpectedOnlyWhereDeclared(t *testing.T) {
	const refusal = "run error: /proc belongs to another PID namespace: fix: unshare --mount-proc"
	rep := func() []byte {
		return []byte(`{"schema":"nscheck/v1","results":[{"id":"p","state":"skipped","reason":"/proc belongs to another PID namespace: fix it"}],"errors":["` + refusal[len("run error: "):] + `"]}`)
	}
	want := &Outcome{Env: Env{Refusal: "/proc belongs to another PID namespace"}}
	want.decodeRun(rep(), 1, nil)
	if v := want.Violations(); len(v) != 0 || want.Refused == "" {
		t.Errorf("a declared refusal: Refused=%q, violations %v", want.Refused, v)
	}
	other := &Outcome{}
	other.decodeRun(rep(), 1, nil)
	if v := other.Violations(); len(v) == 0 {
		t.Error("a refusal where none is declared is not a violation")
	}
	missing := &Outcome{Env: Env{Refusal: "/proc belongs to another PID namespace"}}
	missing.decodeRun([]byte(`{"schema":"nscheck/v1","results":[]}`), 4, nil)
	if v := missing.Violations(); len(v) == 0 {
		t.Error("a declared refusal that did not happen is not a violation")
	}
}

func TestHostEnvironmentsCoverEveryCapabilityAndType(t *testing.T) {
	envs := Host([]string{"chown", "sys_time"}, "/launcher")
	names := map[string]Env{}
	for _, e := range envs {
		if _, dup := names[e.Name]; dup {
			t.Errorf("two environments named %s", e.Name)
		}
		names[e.Name] = e
	}
	for _, want := range []string{"root", "cap-chown", "cap-sys_time", "rootless", "nested", "nested-proc", "nested-net",
		"nested-net-proc", "nested-rootless", "nested-rootless-net-proc", "seccomp-eperm", "seccomp-enosys",
		"max-user-0", "max-time-0", "max-mnt-0"} {
		if _, ok := names[want]; !ok {
			t.Errorf("no environment %s", want)
		}
	}
	c := strings.Join(names["cap-sys_time"].Prefix, " ")
	if c != "setpriv --inh-caps=-sys_time --bounding-set=-sys_time" {
		t.Errorf("cap-sys_time: %s", c)
	}
	n := strings.Join(names["nested-rootless-net-proc"].Prefix, " ")
	for _, f := range []string{"--user", "--mount", "--pid", "--fork", "--net", "--mount-proc", "--map-user=" + RootlessUID} {
		if !strings.Contains(n, f) {
			t.Errorf("nested-rootless-net-proc lacks %s: %s", f, n)
		}
	}
	if strings.Contains(strings.Join(names["nested"].Prefix, " "), "--mount-proc") {
		t.Error("nested (the host's /proc) mounts a fresh proc")
	}
}

func TestSpliceReadme(t *testing.T) {
	r := SpliceReadme("# x\n\ntext\n", "| t |")
	if !strings.Contains(r, "## Tested environments\n\n"+ReadmeBegin+"\n| t |\n"+ReadmeEnd) {
		t.Fatalf("first splice:\n%s", r)
	}
	r2 := SpliceReadme(r+"\n## After\n", "| u |")
	if strings.Contains(r2, "| t |") || !strings.Contains(r2, "| u |") || !strings.Contains(r2, "## After") ||
		strings.Count(r2, "## Tested environments") != 1 {
		t.Fatalf("second splice:\n%s", r2)
	}
}

func TestReadmeSection(t *testing.T) {
	table := "h\n\n### Root\n\n- **root**: x (6s).\n  - skips 1 (a): why\n  - VIOLATION a: harness error: e\n"
	got := ReadmeSection(table)
	want := "h\n\n#### Root\n\n- **root**: x.\n  - skips 1 (a): why\n"
	if got != want {
		t.Errorf("ReadmeSection:\n%q\nwant\n%q", got, want)
	}
}
