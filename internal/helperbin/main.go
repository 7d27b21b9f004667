// Command helperbin is nscheck's lean helper: the binary a helper process
// re-executes when nscheck was built with it embedded (make build).
//
// Every helper pays its binary's start-up: the Go runtime plus the package
// initialisers of everything linked in. nscheck itself links Ginkgo and
// Gomega (and their dependencies), whose initialisers cost several times the
// kernel's own clone+exec; a helper needs none of them. This binary links
// exactly what helpers run (the helper protocol, every suite's actions and
// checks, the namespace probes), so a spawn costs little more than the
// kernel's floor. What only the host runs stays out: the diagnosis (kernel
// config parsing, gzip), reports, the net package (see internal/rawsock). Built without it, nscheck re-executes itself: the same code, only
// slower to start.
package main

import (
	"fmt"
	"os"

	"github.com/nscheck/nscheck/helper"
	_ "github.com/nscheck/nscheck/internal/nsprobe"
	_ "github.com/nscheck/nscheck/suites"
)

func main() {
	helper.Main()
	fmt.Fprintln(os.Stderr, "nscheck-helper: this binary only runs as a helper of nscheck")
	os.Exit(2)
}
