package ns_test

import (
	"testing"

	"github.com/nscheck/nscheck/internal/suitetest"
	_ "github.com/nscheck/nscheck/suites/ns"
)

func TestMain(m *testing.M) { suitetest.Main(m) }

func Test(t *testing.T) { suitetest.Run(t, "ns") }
