package specs

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/prop"
	_ "github.com/nscheck/nscheck/suites"
)

// Every spec is located at its property's registration, in the property's
// own suite package: a failure, `ginkgo outline` and --focus-file point
// there, not at this adapter.
func TestSpecsAreLocatedAtTheirProperty(t *testing.T) {
	for _, p := range prop.All() {
		loc := location(p)
		if !strings.Contains(filepath.ToSlash(loc.FileName), "/suites/") || loc.LineNumber == 0 {
			t.Errorf("%s is located at %s:%d, not in a suite", p.ID, loc.FileName, loc.LineNumber)
		}
	}
}
