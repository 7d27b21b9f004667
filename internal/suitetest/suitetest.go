// Package suitetest is the shared entry point of every suite's test binary:
// it serves helper requests when the binary was re-executed as a helper, and
// otherwise runs the suite's Ginkgo specs.
package suitetest

import (
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/helper"
	// Skip reasons in `go test` name the knob and the fix, as in nscheck.
	_ "github.com/nscheck/nscheck/internal/diag"
)

// Main is a suite's TestMain.
func Main(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// Run is a suite's only Test function.
func Run(t *testing.T, suite string) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "nscheck "+suite)
}
