package prop

import (
	"errors"
	"fmt"
	"strings"
)

// Run is how one run of a check ended: what it saw, and the error that
// stopped it (nil when it completed). Skips are *SkipError or *UnmetError;
// any other error is a harness error.
type Run struct {
	Obs Observation
	Err error
}

// controlPrefix begins the skip reason of a property whose control cannot
// run here.
const controlPrefix = "the negative control cannot run here: "

// Judge combines what the premises said, the real run and the control
// into the property's evaluation. It is the whole verdict logic, and pure:
// the runs have already happened and their errors are classified.
//
//   - A premise that does not hold skips the property; one that could not
//     be probed is a harness error. Neither check has run.
//   - The real run's leaks are the verdict "isolation broken", whatever the
//     control did: evidence of a leak stands on its own.
//   - A real run that stopped with an error is skipped (an environment
//     limit met while running) or a harness error; its control does not
//     count.
//   - Otherwise the control decides whether the pass means anything: it
//     detected the leak (passed), missed it (failed: the check cannot
//     fail), could not run here (skipped: nothing was verified), or broke
//     (a harness error).
func Judge(p *Property, premise error, real, control Run) Evaluation {
	var ev Evaluation
	if premise != nil {
		ev.Control, ev.ControlReason = ControlNotRun, "a premise does not hold"
		if reason, ok := SkipReason(premise); ok {
			ev.Skip = reason
		} else {
			ev.Err = premise
		}
		return ev
	}
	ev.Evidence, ev.Leaks = real.Obs.Evidence, real.Obs.Leaks
	if real.Err != nil {
		ev.Control, ev.ControlReason = ControlNotRun, "the real check did not complete"
		if len(ev.Leaks) > 0 {
			// It saw a leak before it stopped: that is the verdict.
			return ev
		}
		if reason, ok := SkipReason(real.Err); ok {
			ev.Skip = reason
		} else {
			ev.Err = real.Err
		}
		return ev
	}
	if p.NoControl != "" {
		ev.Control, ev.ControlReason = ControlNotRun, p.NoControl
		return ev
	}
	ev.ControlEvidence = control.Obs.Evidence
	if control.Err != nil {
		ev.Control = ControlNotRun
		if reason, ok := SkipReason(control.Err); ok {
			ev.ControlReason = controlPrefix + reason
			if len(ev.Leaks) == 0 {
				ev.Skip = ev.ControlReason
			}
			return ev
		}
		ev.ControlReason = control.Err.Error()
		ev.Err = fmt.Errorf("control: %w", control.Err)
		return ev
	}
	if len(control.Obs.Leaks) > 0 {
		ev.Control, ev.ControlReason = ControlDetected, strings.Join(control.Obs.Leaks, "; ")
		return ev
	}
	ev.Control = ControlMissed
	ev.ControlReason = "no leak seen with " + flagName(p.Flag) + " withheld"
	return ev
}

// SkipReason is the reason of an error that means "this environment
// cannot run it" (a *SkipError or an *UnmetError, wrapped or not).
func SkipReason(err error) (string, bool) {
	var skip *SkipError
	if errors.As(err, &skip) {
		return skip.Reason, true
	}
	var unmet *UnmetError
	if errors.As(err, &unmet) {
		return unmet.Reason(), true
	}
	return "", false
}

// State is the verdict of an evaluation, in the report's words.
func (ev Evaluation) State() string {
	switch {
	case len(ev.Leaks) > 0, ev.Err != nil, ev.Control == ControlMissed:
		return "failed"
	case ev.Skip != "":
		return "skipped"
	}
	return "passed"
}
