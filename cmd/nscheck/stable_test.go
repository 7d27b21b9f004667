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

// The whole catalog gives the same verdicts run after run, one property
// after another and with several evaluated at once.
func TestStableVerdicts(t *testing.T) {
	needRoot(t)
	runs := 20
	if testing.Short() {
		runs = 3
	}
	first := verdicts(t, "--procs", "1")
	for id, v := range first {
		if v != report.Passed+"/detected" && !strings.HasSuffix(v, "/not-run") {
			t.Errorf("%s: %s", id, v)
		}
	}
	widths := []string{"2", "4", "1"}
	for i := 1; i < runs; i++ {
		procs := widths[i%len(widths)]
		if got := verdicts(t, "--procs", procs); !maps.Equal(got, first) {
			t.Fatalf("run %d (--procs %s) differs from run 1 (--procs 1):\n%v\n%v", i+1, procs, got, first)
		}
	}
}
