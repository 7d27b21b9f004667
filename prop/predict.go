package prop

import "context"

// Prediction says that a property will be skipped here, and why.
type Prediction struct {
	ID   string `json:"id"`
	Skip string `json:"skip"`
}

// Predict probes the premises of props as Evaluate does, and lists the
// properties that a run here will skip, with the very reason the run will
// give. A premise that could not be probed predicts nothing (the run will
// report it as a harness error).
func Predict(ctx context.Context, props []*Property) []Prediction {
	out := []Prediction{}
	for _, p := range props {
		if reason, ok := SkipReason(p.CheckPremises(ctx)); ok {
			out = append(out, Prediction{ID: p.ID, Skip: reason})
		}
	}
	return out
}
