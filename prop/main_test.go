package prop_test

import (
	"os"
	"testing"

	"github.com/nscheck/nscheck/helper"
)

// The test binary serves helper requests when it is re-executed as one
// (the Example's property spawns helpers).
func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}
