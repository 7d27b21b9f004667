package prop

import (
	"context"
	"time"

	"github.com/nscheck/nscheck/helper"
)

// Control verdicts, as in the report schema.
const (
	ControlDetected = "detected"
	ControlMissed   = "missed"
	ControlNotRun   = "not-run"
)

// OutcomeEntry names the report entry that carries an Outcome.
const OutcomeEntry = "nscheck.outcome"

// Outcome is what a property's spec attaches to its report: the
// evidence of the real run and the verdict and evidence of the control.
type Outcome struct {
	Evidence        map[string]map[string]any `json:"evidence"`
	Leaks           []string                  `json:"leaks,omitempty"`
	Control         string                    `json:"control"`
	ControlReason   string                    `json:"control_reason,omitempty"`
	ControlEvidence map[string]map[string]any `json:"control_evidence,omitempty"`
	// Untrusted, when set, is the broken namespace type that kept the
	// property from being verified: the kernel did not create a namespace
	// that the harness needed besides the one under test (the control's
	// sandbox's, say). The property is skipped; the report says it once.
	Untrusted string `json:"untrusted,omitempty"`
	// ElapsedMS is what the evaluation took, the real check and the
	// control side by side (a spec may only have waited for it).
	ElapsedMS int64 `json:"elapsed_ms"`
}

// TrialTimeout bounds one run of a check: four helper deadlines (every
// helper has its own, shorter one as well), 20 s by default.
func TrialTimeout() time.Duration { return 4 * helper.DefaultTimeout }

// SpecText is the text of a property's spec, what --focus matches.
func SpecText(p *Property) string { return p.ID + ": " + p.Title }

// Evaluation is an Outcome plus what the spec does with it.
type Evaluation struct {
	Outcome
	// Skip, when set, is why the environment cannot run the property.
	Skip string
	// Err is a harness error: the property fails.
	Err error
}

// Evaluate runs the real check and the control side by side (they share
// nothing: the control lives in its own sandbox) and combines them; a control
// only counts when the real check completed.
func Evaluate(ctx context.Context, p *Property) Evaluation {
	started := time.Now()
	ev := evaluate(ctx, p)
	ev.ElapsedMS = time.Since(started).Milliseconds()
	return ev
}

func evaluate(ctx context.Context, p *Property) Evaluation {
	if err := p.CheckPremises(ctx); err != nil {
		return Judge(p, err, Run{}, Run{})
	}
	rootless := !Capable()
	var control chan Run
	if p.NoControl == "" {
		control = make(chan Run, 1)
		go func() {
			obs, err := runControl(ctx, p, rootless)
			if skip, ok := asSkip(err); ok {
				err = skip
			}
			control <- Run{obs, err}
		}()
	}
	obs, err := runReal(ctx, p, rootless)
	var c Run
	if control != nil {
		c = <-control
	}
	return Judge(p, nil, Run{obs, err}, c)
}

func runReal(ctx context.Context, p *Property, rootless bool) (Observation, error) {
	ctx, cancel := context.WithTimeout(ctx, TrialTimeout())
	defer cancel()
	t := newTrial(ctx, p, true, rootless, false)
	err := t.Prop.Check(t)
	t.finish()
	return t.obs, classify(err)
}
