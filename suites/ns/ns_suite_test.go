package ns_test

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/specs"
	_ "github.com/nscheck/nscheck/suites/ns"
)

// The test binary serves helper requests when it is re-executed as one.
func TestMain(m *testing.M) { specs.Main(m) }

// The specs of the properties this package registers.
var _ = specs.Define()

func TestNS(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "nscheck ns")
}
