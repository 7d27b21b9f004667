// Package helpermode is what a helper process links and runs: importing it
// registers every action (the suites, the namespace probes) and, in a
// process started as a helper, serves the request from this package's
// init function and exits.
//
// Why an init function: a plain `go build` or `go install` of
// cmd/nscheck has no lean helper embedded (internal/helperbin, built by
// `make build`), so its helpers re-execute nscheck itself, which links
// Ginkgo, Gomega, the report renderers and the kernel decompressors. Go
// initialises packages in dependency order, the first ready one by import
// path at each step (go.dev/ref/spec#Package_initialization), so this
// package, which depends on only what helpers run, is initialised as soon
// as its dependencies are: Ginkgo, prometheus/procfs (its regexps),
// internal/runner and most of the host's packages never initialise in a
// helper (cmd/nscheck's TestHelperServedBeforeHostInits). What still does
// is every package that sorts before this one's last dependency (os/exec)
// and depends only on what is ready by then: in nscheck's binary some 100
// of its 200 initialisers. cmd/nscheck therefore runs helpers from a copy
// of itself with this package's dependencies moved to the front of the
// init order (internal/initorder). `make bench`
// (BenchmarkCatalog/install-vs-make) measures what remains against the
// lean helper.
//
// Only an action registered by then is served here (a helper's argv[1]
// names its action): one that a package initialised later registers (the
// command's own tests do) is served by the helper.Main that main calls
// first, as before.
//
// The lean helper binary (internal/helperbin) is this package and a main:
// the two link the same actions.
package helpermode

import (
	"os"
	"slices"

	"github.com/nscheck/nscheck/helper"
	_ "github.com/nscheck/nscheck/internal/nsprobe"
	_ "github.com/nscheck/nscheck/suites"
)

// The runtime runs initialisers on the main goroutine locked to the main
// thread, as it would run main: an action that needs the thread group
// leader (time.setup) has it.
func init() {
	if helper.IsHelper() && len(os.Args) > 1 && slices.Contains(helper.Actions(), os.Args[1]) {
		helper.Main()
	}
}
