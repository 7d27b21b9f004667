package prop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestJudge is the verdict table: every combination of premise, real run
// and control that Evaluate can meet, without root or a kernel.
func TestJudge(t *testing.T) {
	leak := Observation{Leaks: []string{"the host's hostname changed"}}
	clean := Observation{Evidence: map[string]map[string]any{"host": {"hostname": "vm"}}}
	skip := &SkipError{Reason: "no veth here"}
	unmet := &UnmetError{Cause: "CAP_SYS_TIME is not in nscheck's bounding set", Fix: "give it", Why: "writing timens_offsets"}
	harness := errors.New("helper crashed")
	withControl := &Property{ID: "uts.x", Flag: unix.CLONE_NEWUTS}
	noControl := &Property{ID: "uts.y", Flag: unix.CLONE_NEWUTS, NoControl: "an EPERM check"}

	for _, tc := range []struct {
		name    string
		p       *Property
		premise error
		real    Run
		control Run
		state   string
		verdict string
		reason  string // a part of the skip reason, or of the error
	}{
		{"premise unmet", withControl, unmet, Run{}, Run{}, "skipped", ControlNotRun, "(needed for writing timens_offsets); fix: give it"},
		{"premise unmet, wrapped", withControl, fmt.Errorf("probe: %w", unmet), Run{}, Run{}, "skipped", ControlNotRun, "CAP_SYS_TIME"},
		{"premise not probed", withControl, harness, Run{}, Run{}, "failed", ControlNotRun, "helper crashed"},
		{"no leak, control detected", withControl, nil, Run{Obs: clean}, Run{Obs: leak}, "passed", ControlDetected, ""},
		{"no leak, control missed", withControl, nil, Run{Obs: clean}, Run{Obs: clean}, "failed", ControlMissed, ""},
		{"no leak, control skipped", withControl, nil, Run{Obs: clean}, Run{Err: skip}, "skipped", ControlNotRun, "the negative control cannot run here: no veth here"},
		{"no leak, control unmet", withControl, nil, Run{Obs: clean}, Run{Err: unmet}, "skipped", ControlNotRun, "the negative control cannot run here: CAP_SYS_TIME"},
		{"no leak, control harness error", withControl, nil, Run{Obs: clean}, Run{Err: harness}, "failed", ControlNotRun, "control: helper crashed"},
		{"leak, control detected", withControl, nil, Run{Obs: leak}, Run{Obs: leak}, "failed", ControlDetected, ""},
		{"leak, control missed", withControl, nil, Run{Obs: leak}, Run{Obs: clean}, "failed", ControlMissed, ""},
		{"leak, control skipped", withControl, nil, Run{Obs: leak}, Run{Err: skip}, "failed", ControlNotRun, ""},
		{"leak, then the check stopped", withControl, nil, Run{Obs: leak, Err: harness}, Run{Obs: leak}, "failed", ControlNotRun, ""},
		{"real skipped", withControl, nil, Run{Err: skip}, Run{Obs: leak}, "skipped", ControlNotRun, "no veth here"},
		{"real unmet while running", withControl, nil, Run{Err: unmet}, Run{Obs: leak}, "skipped", ControlNotRun, "CAP_SYS_TIME"},
		{"real harness error", withControl, nil, Run{Err: harness}, Run{Obs: leak}, "failed", ControlNotRun, "helper crashed"},
		{"no control by nature, no leak", noControl, nil, Run{Obs: clean}, Run{}, "passed", ControlNotRun, ""},
		{"no control by nature, leak", noControl, nil, Run{Obs: leak}, Run{}, "failed", ControlNotRun, ""},
		{"no control by nature, skipped", noControl, nil, Run{Err: skip}, Run{}, "skipped", ControlNotRun, "no veth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := Judge(tc.p, tc.premise, tc.real, tc.control)
			if got := ev.State(); got != tc.state {
				t.Errorf("state %s, want %s (%+v)", got, tc.state, ev)
			}
			if ev.Control != tc.verdict {
				t.Errorf("control %s, want %s", ev.Control, tc.verdict)
			}
			if ev.Skip != "" && ev.Err != nil {
				t.Errorf("both a skip and an error: %+v", ev)
			}
			said := ev.Skip
			if ev.Err != nil {
				said = ev.Err.Error()
			}
			if !strings.Contains(said, tc.reason) {
				t.Errorf("reason %q does not say %q", said, tc.reason)
			}
			if tc.state == "skipped" && ev.Skip == "" {
				t.Error("a skip without a reason")
			}
			if len(tc.real.Obs.Leaks) > 0 && len(ev.Leaks) == 0 {
				t.Error("the real run's leaks were dropped")
			}
		})
	}
}

func TestUnmetReason(t *testing.T) {
	u := Unmet("veth is not available", "modprobe veth")
	if got := u.Reason(); got != "veth is not available; fix: modprobe veth" {
		t.Errorf("Reason() = %q", got)
	}
	if got := (&UnmetError{Cause: "c"}).Reason(); got != "c" {
		t.Errorf("Reason() without a fix = %q", got)
	}
}
