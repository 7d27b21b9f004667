package matrix

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/report"
)

func TestCompareSame(t *testing.T) {
	a, b := vmPair(t)
	d := Compare(a, b)
	if d.Regressed() || len(d.Improvements)+len(d.Others) != 0 || d.Unchanged != len(a.Results) {
		t.Errorf("%+v", d)
	}
	if d.Old != a.Kernel.Release || d.New != b.Kernel.Release {
		t.Errorf("labels %q %q", d.Old, d.New)
	}
}

func TestCompareChanges(t *testing.T) {
	old, new := vmPair(t)
	set(old, "ipc.distinct-ns", report.Failed, "isolation broken: same inode")
	set(new, "pid.child-is-init", report.Skipped, "CONFIG_PID_NS is off: enable it")
	set(new, "uts.hostname-local", report.Failed, "isolation broken: hostname leaked")
	set(old, "time.monotonic-offset", report.Skipped, "no time namespace")
	set(new, "time.monotonic-offset", report.Failed, "offset leaked")
	set(old, "net.loopback-only", report.Skipped, "no veth")
	set(new, "net.loopback-only", report.Skipped, "no netns")
	set(new, "cgroup.distinct-ns", report.Passed, "")
	var kept []report.Result
	for _, r := range new.Results {
		if r.ID != "mnt.distinct-ns" {
			kept = append(kept, r)
		}
	}
	new.Results = kept
	new.Errors = []string{"boot: something", "console: [ 1.0] noise"}
	old.Errors = []string{"console: [ 2.0] other noise"}

	d := Compare(old, new)
	ids := func(cs []Change) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.ID+":"+c.Old+">"+c.New)
		}
		return strings.Join(s, " ")
	}
	if got := ids(d.Regressions); got != "mnt.distinct-ns:passed>absent pid.child-is-init:passed>skipped time.monotonic-offset:skipped>failed uts.hostname-local:passed>failed" {
		t.Errorf("regressions: %s", got)
	}
	if got := ids(d.Improvements); got != "ipc.distinct-ns:failed>passed" {
		t.Errorf("improvements: %s", got)
	}
	if got := ids(d.Others); got != "cgroup.distinct-ns:absent>passed net.loopback-only:skipped>skipped" {
		t.Errorf("others: %s", got)
	}
	if len(d.NewErrors) != 1 || d.NewErrors[0] != "boot: something" || len(d.FixedErrors) != 0 || !d.Regressed() {
		t.Errorf("errors: new %q fixed %q", d.NewErrors, d.FixedErrors)
	}

	var b bytes.Buffer
	d.WriteText(&b, false)
	out := b.String()
	ri, ii, oi := strings.Index(out, "regressions (4):"), strings.Index(out, "improvements (1):"), strings.Index(out, "other changes (2):")
	if ri < 0 || ii < ri || oi < ii {
		t.Errorf("sections missing or out of order:\n%s", out)
	}
	mustContain(t, out,
		"  uts.hostname-local     PASS -> FAIL: isolation broken: hostname leaked\n",
		"  ipc.distinct-ns  FAIL -> PASS (was: isolation broken: same inode)\n",
		"new run errors (1):\n  boot: something\n",
		"5 regressions, 1 improvements, 2 other changes, 4 unchanged\n",
	)
}

func TestCompareOnlyImprovements(t *testing.T) {
	old, new := vmPair(t)
	set(old, "uts.hostname-local", report.Skipped, "no uts")
	if d := Compare(old, new); d.Regressed() || len(d.Improvements) != 1 {
		t.Errorf("%+v", d)
	}
}
