package utsplus_test

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/specs"
	_ "github.com/nscheck/nscheck/suites/uts" // nscheck's UTS properties

	_ "example.com/nscheck-uts-plus" // and the one defined here
)

// A test binary re-executed as a helper serves its request and exits.
func TestMain(m *testing.M) { specs.Main(m) }

// One spec per registered property: the UTS catalog and utsplus's own.
var _ = specs.Define()

func TestUTSPlus(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "uts plus")
}
