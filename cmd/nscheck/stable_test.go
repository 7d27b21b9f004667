package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/report"
)

// verdicts runs the whole catalog and returns id -> state/control.
func verdicts(t *testing.T, args ...string) map[string]string {
	t.Helper()
	res := nscheck(t, append([]string{"run", "--json", "-"}, args...)...)
	rep, err := report.Decode(strings.NewReader(res.stdout))
	if err != nil {
		t.Fatalf("exit %d: %v\n%s", res.code, err, res.stderr)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("run errors: %v", rep.Errors)
	}
	out := map[string]string{}
	for _, r := range rep.Results {
		out[r.ID] = r.State + "/" + r.Control
	}
	return out
}

// The whole catalog gives the same verdicts run after run, and in parallel.
func TestStableVerdicts(t *testing.T) {
	needRoot(t)
	runs := 20
	if testing.Short() {
		runs = 3
	}
	first := verdicts(t)
	for id, v := range first {
		if v != report.Passed+"/detected" && !strings.HasSuffix(v, "/not-run") {
			t.Errorf("%s: %s", id, v)
		}
	}
	for i := 1; i < runs; i++ {
		if got := verdicts(t); !maps.Equal(got, first) {
			t.Fatalf("run %d differs from run 1:\n%v\n%v", i+1, got, first)
		}
	}
	if got := verdicts(t, "--procs", "2"); !maps.Equal(got, first) {
		t.Fatalf("--procs 2 differs from a serial run:\n%v\n%v", got, first)
	}
}
