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
// as its dependencies are, before the host's packages that import
// neither it nor each other's helpers: Ginkgo, Gomega, prometheus/procfs,
// internal/runner and the rest never initialise in a helper. What still
// does is every package that sorts before this one's last dependency
// (os/exec) and depends only on what is ready by then: in nscheck's binary
// the checksum tables of klauspost/compress's snappy and of xz, go/types'
// universe, encoding/gob; `make bench` (BenchmarkCatalog) measures what
// that and the larger binary cost against the lean helper.
//
// The lean helper binary (internal/helperbin) is this package and a main
// that says it is no command: the two link the same actions.
package helpermode

import (
	"github.com/nscheck/nscheck/helper"
	_ "github.com/nscheck/nscheck/internal/nsprobe"
	_ "github.com/nscheck/nscheck/suites"
)

// The runtime runs initialisers on the main goroutine locked to the main
// thread, as it would run main: an action that needs the thread group
// leader (time.setup) has it.
func init() { helper.Main() }
