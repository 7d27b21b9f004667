package prop

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
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
//   - A helper that the namespace guard stopped because the kernel did not
//     create a namespace it was cloned with (an *nsguard.Error, Asked) is
//     evidence, not a harness error. In the real run, for the type under
//     test, it is the verdict "isolation broken". For another type, in the
//     real run or the control (whose sandbox needs a mount and a PID
//     namespace), it is a broken type the harness relies on: the property
//     is untrusted (skipped, Untrusted naming the cause, which the report
//     states once for the whole run), never failed on another type's
//     account.
//   - Otherwise the control decides whether the pass means anything: it
//     detected the leak (passed), missed it (failed: the check cannot
//     fail), could not run here (skipped: nothing was verified), or broke
//     (a harness error).
func Judge(p *Property, premise error, real, control Run) Evaluation {
	var ev Evaluation
	if premise != nil {
		ev.Control, ev.ControlReason = ControlNotRun, "a premise does not hold"
		if guardVerdict(p, &ev, premise) {
			return ev
		}
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
		if guardVerdict(p, &ev, real.Err) || len(ev.Leaks) > 0 {
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
		if g, ok := NotCreated(control.Err); ok {
			ev.ControlReason = "the control could not run: " + g.Error()
			if len(ev.Leaks) == 0 {
				ev.Untrusted = g.Cause()
				ev.Skip = untrustedPrefix + ev.Untrusted + ", which the negative control (its sandbox, or a helper in it) needs, so the check could not be shown to detect a leak (" + g.Detail() + "); see the " + g.Type + " properties"
			}
			return ev
		}
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

// guardVerdict judges a run (or a premise's probe) that the namespace
// guard stopped because the kernel did not create a namespace: for the
// type under test that is a leak, with the guard's evidence; for another
// type, unless leaks were seen already, the property is untrusted. It
// reports whether err was the guard's.
func guardVerdict(p *Property, ev *Evaluation, err error) bool {
	g, ok := NotCreated(err)
	switch {
	case !ok:
		return false
	case g.Type == typeOf(p.Flag):
		ev.Evidence, ev.Leaks = withGuardEvidence(ev.Evidence, g), append(slices.Clip(ev.Leaks), g.Error())
	case len(ev.Leaks) == 0:
		ev.Untrusted = g.Cause()
		ev.Skip = untrustedPrefix + ev.Untrusted + ", which the check relies on (" + g.Detail() + "); see the " + g.Type + " properties"
	}
	return true
}

// untrustedPrefix begins the skip reason of a property that a broken
// namespace type the harness relies on keeps from being verified.
const untrustedPrefix = "untrusted: "

// NotCreated finds in err the namespace guard's report that the kernel did
// not create a namespace a helper was cloned with (see internal/nsguard).
func NotCreated(err error) (*nsguard.Error, bool) {
	var g *nsguard.Error
	if errors.As(err, &g) && g.Asked {
		return g, true
	}
	return nil, false
}

// typeOf is the namespace type of a CLONE_NEW* flag ("" for none).
func typeOf(flag uintptr) string {
	for _, typ := range nsfs.Types {
		if flag != 0 && nsfs.Flags[typ] == flag {
			return typ
		}
	}
	return ""
}

// withGuardEvidence is evidence plus the namespace the guard found the
// helper in, which is its parent's (the observer's, for a helper the check
// started): the sides are copied, not changed.
func withGuardEvidence(evidence map[string]map[string]any, g *nsguard.Error) map[string]map[string]any {
	out := make(map[string]map[string]any, len(evidence)+2)
	for side, facts := range evidence {
		out[side] = maps.Clone(facts)
	}
	for _, side := range []string{"inside", "host"} {
		if out[side] == nil {
			out[side] = map[string]any{}
		}
	}
	if g.Broken != "" {
		// A namespace the kernel created, which does not behave as one.
		if g.ID != (nsfs.ID{}) {
			out["inside"][g.Type+" namespace"] = g.ID.String()
		}
		out["inside"]["guard"] = g.Broken + ": it ran nothing"
		return out
	}
	out["inside"][g.Type+" namespace"] = g.ID.String()
	out["inside"]["guard"] = "cloned for a new " + nsguard.Name(g.Type) + " namespace, still in its parent's: it ran nothing"
	out["host"][g.Type+" namespace of the helper's parent"] = g.ID.String()
	return out
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
