package runner

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/prop"
)

// specReport builds the report Ginkgo gives a property's spec.
func specReport(id string, state types.SpecState, msg string, out *prop.Outcome) ginkgo.SpecReport {
	sr := ginkgo.SpecReport{
		LeafNodeLabels: []string{"prop:" + id, "ns:" + strings.SplitN(id, ".", 2)[0], "needs:userns"},
		State:          state,
		Failure:        types.Failure{Message: msg},
	}
	if out != nil {
		sr.ReportEntries = types.ReportEntries{{Name: prop.OutcomeEntry, Value: types.WrapEntryValue(*out)}}
	}
	return sr
}

// TestResultOf is the table of Ginkgo spec states to report results,
// without root or a run.
func TestResultOf(t *testing.T) {
	leaks := &prop.Outcome{Leaks: []string{"the host's hostname changed"}, Control: prop.ControlDetected, ElapsedMS: 7}
	missed := &prop.Outcome{Control: prop.ControlMissed, ControlReason: "no leak seen with CLONE_NEWUTS withheld"}
	detected := &prop.Outcome{Control: prop.ControlDetected, ControlReason: "leaked", Evidence: map[string]map[string]any{"host": {"hostname": "vm"}}}
	untrusted := &prop.Outcome{Control: prop.ControlNotRun, Untrusted: "the kernel did not create a new mount namespace"}
	notCreated := &prop.Outcome{Control: prop.ControlNotRun, Leaks: []string{"the kernel did not create a new UTS namespace: the helper cloned with CLONE_NEWUTS is still in its parent's"}}
	interrupted := specReport("uts.x", types.SpecStateSkipped, "Interrupted by User", nil)
	interrupted.Failure.FailureNodeType = types.NodeTypeInvalid

	for _, tc := range []struct {
		name    string
		sr      ginkgo.SpecReport
		ok      bool
		state   string
		reason  string
		control string
	}{
		{"not a property", ginkgo.SpecReport{State: types.SpecStatePassed}, false, "", "", ""},
		{"filtered out", specReport("uts.x", types.SpecStateSkipped, "", nil), false, "", "", ""},
		{"passed", specReport("uts.x", types.SpecStatePassed, "", detected), true, report.Passed, "", prop.ControlDetected},
		{"skipped", specReport("uts.x", types.SpecStateSkipped, "no veth here", &prop.Outcome{Control: prop.ControlNotRun}), true, report.Skipped, "no veth here", prop.ControlNotRun},
		{"interrupted before it ran", interrupted, true, report.Skipped, "not run: the run was stopped before this property", prop.ControlNotRun},
		{"isolation broken", specReport("uts.x", types.SpecStateFailed, "isolation broken: uts.x", leaks), true, report.Failed, "isolation broken: the host's hostname changed", prop.ControlDetected},
		{"control missed", specReport("uts.x", types.SpecStateFailed, "control missed", missed), true, report.Failed, "control missed: the check cannot fail (no leak seen with CLONE_NEWUTS withheld)", prop.ControlMissed},
		{"harness error", specReport("uts.x", types.SpecStateFailed, "harness error in uts.x: helper crashed", &prop.Outcome{Control: prop.ControlNotRun}), true, report.Failed, "harness error in uts.x: helper crashed", prop.ControlNotRun},
		{"timed out", specReport("uts.x", types.SpecStateTimedout, "A node timeout occurred", nil), true, report.Failed, "timed out: A node timeout occurred", prop.ControlNotRun},
		{"interrupted while running", specReport("uts.x", types.SpecStateInterrupted, "Interrupted by User", nil), true, report.Failed, "interrupted while running (Interrupted by User): its helpers were killed", prop.ControlNotRun},
		{"panicked", specReport("uts.x", types.SpecStatePanicked, "boom", nil), true, report.Failed, "panic: boom", prop.ControlNotRun},
		{"aborted", specReport("uts.x", types.SpecStateAborted, "stop", nil), true, report.Failed, "aborted: stop", prop.ControlNotRun},
		{"untrusted", specReport("uts.x", types.SpecStateSkipped, "untrusted: the kernel did not create a new mount namespace, which ...", untrusted), true, report.Skipped, "untrusted: the kernel did not create a new mount namespace", prop.ControlNotRun},
		{"the type under test not created", specReport("uts.x", types.SpecStateFailed, "isolation broken: uts.x", notCreated), true, report.Failed, "isolation broken: the kernel did not create a new UTS namespace", prop.ControlNotRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := resultOf(tc.sr)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if res.State != tc.state || res.Control != tc.control || !strings.HasPrefix(res.Reason, tc.reason) {
				t.Errorf("got %s (%q, control %s), want %s (%q, control %s)", res.State, res.Reason, res.Control, tc.state, tc.reason, tc.control)
			}
			if res.State == report.Skipped && strings.HasPrefix(tc.reason, "untrusted") && res.Untrusted == "" {
				t.Error("an untrusted property's result does not name the cause")
			}
			if res.ID != "uts.x" || res.Namespace != "uts" {
				t.Errorf("id %q namespace %q", res.ID, res.Namespace)
			}
		})
	}
	res, _ := resultOf(specReport("uts.x", types.SpecStateFailed, "isolation broken", leaks))
	if res.DurationMS != 7 {
		t.Errorf("duration %d ms, want the evaluation's own 7", res.DurationMS)
	}
	if got := res.Evidence["leaks"]; got == nil {
		t.Error("the leaks are not in the evidence")
	}
}

// The run-level note: one per broken type the harness relies on, however
// many properties it kept from being verified.
func TestUntrustedOnceAtRunLevel(t *testing.T) {
	cause := "the kernel did not create a new mount namespace"
	rep := &report.Report{Results: []report.Result{
		{ID: "ipc.a", State: report.Skipped, Reason: "untrusted: " + cause, Untrusted: cause},
		{ID: "mnt.b", State: report.Failed, Reason: "isolation broken: " + cause},
		{ID: "uts.c", State: report.Skipped, Reason: "untrusted: " + cause, Untrusted: cause},
		{ID: "uts.d", State: report.Passed},
	}}
	rep.Tally()
	if len(rep.Untrusted) != 1 || rep.Untrusted[0].Cause != cause || strings.Join(rep.Untrusted[0].Properties, " ") != "ipc.a uts.c" {
		t.Fatalf("untrusted = %+v, want the cause once with ipc.a and uts.c", rep.Untrusted)
	}
	var b strings.Builder
	if err := report.WriteText(&b, rep, report.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "untrusted: "+cause+", which"); n != 1 {
		t.Errorf("the text report states the cause %d times at run level, want once:\n%s", n, b.String())
	}
}
