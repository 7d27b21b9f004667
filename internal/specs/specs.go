// Package specs turns the property catalog (internal/prop) into Ginkgo
// specs: one It per property, labelled prop:<id>, ns:<type> and
// needs:<root|userns>, that evaluates the check and its control and asserts
// the outcome with Gomega. Both `go test ./suites/...` and `nscheck run` call
// Define before RunSpecs, so they run the very same specs.
package specs

import (
	"fmt"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/internal/prop"
)

var once sync.Once

// Define defines a spec for every registered property, once per process
// (Ginkgo builds its tree before RunSpecs, and a spec defined twice would
// run twice).
func Define() {
	once.Do(func() {
		for _, p := range prop.All() {
			define(p)
		}
	})
}

func define(p *prop.Property) {
	ginkgo.It(prop.SpecText(p), ginkgo.Label(p.Labels()...), func(ctx ginkgo.SpecContext) {
		ev := evaluate(ctx, p)
		ginkgo.AddReportEntry(prop.OutcomeEntry, ev.Outcome, ginkgo.ReportEntryVisibilityFailureOrVerbose)
		if ev.Skip != "" {
			ginkgo.Skip(ev.Skip)
		}
		if ev.Err != nil {
			ginkgo.Fail(fmt.Sprintf("harness error in %s: %v", p.ID, ev.Err))
		}
		gomega.Expect(ev.Leaks).To(gomega.BeEmpty(), "isolation broken: %s", p.ID)
		gomega.Expect(ev.Control).NotTo(gomega.Equal(prop.ControlMissed),
			"control missed: with the namespace withheld the check still saw no leak, so it cannot fail (%s)", ev.ControlReason)
	}, ginkgo.NodeTimeout(2*prop.TrialTimeout()+5*time.Second))
}
