// Package specs turns the registered properties (package prop) into Ginkgo
// specs: a Describe per namespace type and in it one It per property,
// located where the property is registered and labelled prop:<id>,
// ns:<type>, needs:<root|userns> (and its Tags), that evaluates the check
// and its control and asserts the outcome with Gomega. `go test
// ./suites/...`, `nscheck run` and any other module's suite call Define
// before RunSpecs, so they run the very same specs.
//
// A suite of another module runs the catalog, or a part of it, like this
// (see examples/ in the repository):
//
//	import (
//		_ "github.com/nscheck/nscheck/suites/uts" // the UTS properties
//	)
//
//	func TestMain(m *testing.M) { specs.Main(m) } // serves helper requests
//
//	var _ = specs.Define()
//
//	func TestIsolation(t *testing.T) {
//		gomega.RegisterFailHandler(ginkgo.Fail)
//		ginkgo.RunSpecs(t, "isolation")
//	}
package specs

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/helper"
	// Skip reasons in `go test` name the knob and the fix, as in nscheck.
	_ "github.com/nscheck/nscheck/internal/diag"
	"github.com/nscheck/nscheck/prop"
)

var once sync.Once

// Define defines a spec for every registered property, once per process
// (Ginkgo builds its tree before RunSpecs, and a spec defined twice would
// run twice).
//
// It returns true so that a suite can call it where Ginkgo specs are
// declared, at package level: var _ = specs.Define().
func Define() bool {
	once.Do(func() {
		var byNS [][]*prop.Property
		for _, p := range prop.All() { // sorted by ID, so by type first
			if n := len(byNS); n > 0 && byNS[n-1][0].Namespace() == p.Namespace() {
				byNS[n-1] = append(byNS[n-1], p)
				continue
			}
			byNS = append(byNS, []*prop.Property{p})
		}
		for _, props := range byNS {
			ginkgo.Describe(props[0].Namespace(), location(props[0]), func() {
				for _, p := range props {
					define(p)
				}
			})
		}
	})
	return true
}

// Main is a suite's TestMain: a test binary re-executed as a helper serves
// its request and exits; otherwise the tests run.
func Main(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// location is where the property was registered, as Ginkgo records a
// node's code location.
func location(p *prop.Property) types.CodeLocation {
	if p.File == "" {
		return types.NewCodeLocation(2)
	}
	return types.CodeLocation{FileName: p.File, LineNumber: p.Line}
}

func define(p *prop.Property) {
	ginkgo.It(prop.SpecText(p), location(p), ginkgo.Label(p.Labels()...), func(ctx ginkgo.SpecContext) {
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
