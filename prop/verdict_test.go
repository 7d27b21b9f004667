package prop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
)

// TestJudge is the verdict table: every combination of premise, real run
// and control that Evaluate can meet, without root or a kernel.
func TestJudge(t *testing.T) {
	leak := Observation{Leaks: []string{"the host's hostname changed"}}
	clean := Observation{Evidence: map[string]map[string]any{"host": {"hostname": "vm"}}}
	skip := &SkipError{Reason: "no veth here"}
	unmet := &UnmetError{Cause: "CAP_SYS_TIME is not in nscheck's bounding set", Fix: "give it", Why: "writing timens_offsets"}
	harness := errors.New("helper crashed")
	// The namespace guard's reports, as they cross the helper protocol:
	// the kernel did not create a UTS (the type under test) or a mount
	// namespace (one the harness needs); and an action the guard kept from
	// running in the host's UTS namespace (a check's bug, not a leak).
	wire := func(g *nsguard.Error) error { return &helper.Error{Op: "namespace guard", Msg: g.Error(), Guard: g} }
	notUTS := wire(&nsguard.Error{Type: "uts", ID: nsfs.ID{Dev: 4, Ino: 4026531838}, Asked: true})
	notMnt := fmt.Errorf("sandbox: %w", wire(&nsguard.Error{Type: "mnt", ID: nsfs.ID{Dev: 4, Ino: 4026531841}, Asked: true}))
	refused := wire(&nsguard.Error{Type: "uts", ID: nsfs.ID{Dev: 4, Ino: 4026531838}})
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
		{"tested type not created", withControl, nil, Run{Obs: clean, Err: notUTS}, Run{Obs: leak}, "failed", ControlNotRun, ""},
		{"tested type not created, control's sandbox neither", withControl, nil, Run{Err: notUTS}, Run{Err: notUTS}, "failed", ControlNotRun, ""},
		{"tested type not created, no control by nature", noControl, nil, Run{Err: notUTS}, Run{}, "failed", ControlNotRun, ""},
		{"sandbox's mount namespace not created", withControl, nil, Run{Obs: clean}, Run{Err: notMnt}, "skipped", ControlNotRun, "untrusted: the kernel did not create a new mount namespace"},
		{"sandbox's mount namespace not created, leak", withControl, nil, Run{Obs: leak}, Run{Err: notMnt}, "failed", ControlNotRun, ""},
		{"another type not created in the real run", withControl, nil, Run{Err: notMnt}, Run{Obs: leak}, "skipped", ControlNotRun, "untrusted: the kernel did not create a new mount namespace"},
		{"premise probe: tested type not created", withControl, fmt.Errorf("probe clone:CLONE_NEWUTS: %w", notUTS), Run{}, Run{}, "failed", ControlNotRun, ""},
		{"premise probe: sandbox's mount namespace not created", withControl, fmt.Errorf("probe sandbox:CLONE_NEWUTS: %w", notMnt), Run{}, Run{}, "skipped", ControlNotRun, "untrusted: the kernel did not create a new mount namespace"},
		{"guard refused an action in the host's namespace", withControl, nil, Run{Err: refused}, Run{Obs: leak}, "failed", ControlNotRun, "refusing to act"},
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
			_, realGuard := NotCreated(tc.real.Err)
			_, controlGuard := NotCreated(tc.control.Err)
			_, premiseGuard := NotCreated(tc.premise)
			realGuard = realGuard || premiseGuard
			switch {
			case tc.state == "failed" && realGuard && len(tc.real.Obs.Leaks) == 0:
				// Isolation broken, with the guard's evidence.
				if len(ev.Leaks) != 1 || !strings.HasPrefix(ev.Leaks[0], "the kernel did not create a new UTS namespace") {
					t.Errorf("leaks %q, want the kernel's failure to create the UTS namespace", ev.Leaks)
				}
				if ev.Evidence["inside"]["uts namespace"] != "4:4026531838" || ev.Err != nil {
					t.Errorf("evidence %v, err %v: want the helper's namespace and no harness error", ev.Evidence, ev.Err)
				}
				if tc.real.Obs.Evidence != nil && len(tc.real.Obs.Evidence["inside"]) != 0 {
					t.Error("Judge changed the real run's evidence")
				}
			case tc.state == "skipped" && (realGuard || controlGuard):
				if ev.Untrusted != "the kernel did not create a new mount namespace" {
					t.Errorf("Untrusted = %q, want the mount namespace named", ev.Untrusted)
				}
			case ev.Untrusted != "" && len(ev.Leaks) == 0:
				t.Errorf("Untrusted %q on a %s property", ev.Untrusted, tc.state)
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

// TestJudgeBrokenPID: a kernel that created a PID namespace which does not
// behave as one (getpid() of its first process is not 1) is evidence like
// a namespace it did not create: isolation broken for a pid property, the
// property untrusted for any other, whose control's sandbox needs one.
func TestJudgeBrokenPID(t *testing.T) {
	g := &nsguard.Error{Type: "pid", ID: nsfs.ID{Dev: 4, Ino: 4026532200}, Asked: true, Broken: "the first process of a new PID namespace (cloned with CLONE_NEWPID) has getpid() = 180, not 1"}
	broken := fmt.Errorf("sandbox: %w", &helper.Error{Op: "namespace guard", Msg: g.Error(), Guard: g})
	atClone := fmt.Errorf("probe sandbox:CLONE_NEWUSER: %w", nsguard.PIDBrokenAtClone("kill"))
	clean := Observation{Evidence: map[string]map[string]any{"host": {"hostname": "vm"}}}
	leak := Observation{Leaks: []string{"the host's hostname changed"}}
	uts := &Property{ID: "uts.x", Flag: unix.CLONE_NEWUTS}
	pid := &Property{ID: "pid.x", Flag: unix.CLONE_NEWPID}

	const cause = "the kernel's PID namespace is broken"
	for _, tc := range []struct {
		name             string
		ev               Evaluation
		state, untrusted string
	}{
		{"control's sandbox", Judge(uts, nil, Run{Obs: clean}, Run{Err: broken}), "skipped", cause},
		{"premise probe, at clone", Judge(uts, atClone, Run{}, Run{}), "skipped", cause},
		{"a leak stands", Judge(uts, nil, Run{Obs: leak}, Run{Err: broken}), "failed", ""},
		{"the type under test", Judge(pid, nil, Run{Err: broken}, Run{Obs: leak}), "failed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ev.State(); got != tc.state || tc.ev.Untrusted != tc.untrusted {
				t.Fatalf("state %s, untrusted %q; want %s, %q (%+v)", got, tc.ev.Untrusted, tc.state, tc.untrusted, tc.ev)
			}
			if tc.untrusted != "" && !strings.HasPrefix(tc.ev.Skip, untrustedPrefix+cause) {
				t.Errorf("skip %q does not begin with the cause", tc.ev.Skip)
			}
			if tc.ev.Err != nil {
				t.Errorf("a harness error: %v", tc.ev.Err)
			}
		})
	}
	ev := Judge(pid, nil, Run{Err: broken}, Run{})
	if len(ev.Leaks) != 1 || !strings.HasPrefix(ev.Leaks[0], cause+": the first process") {
		t.Errorf("leaks %q, want the broken PID namespace with its evidence", ev.Leaks)
	}
	if !strings.Contains(fmt.Sprint(ev.Evidence["inside"]["guard"]), "getpid() = 180") {
		t.Errorf("evidence %v lacks the guard's", ev.Evidence)
	}
}
