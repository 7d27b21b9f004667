// Command helperbin is nscheck's lean helper: the binary a helper process
// re-executes when nscheck was built with it embedded (make build).
//
// Every helper pays its binary's start-up: the Go runtime, the page faults
// of the binary and the package initialisers of everything linked in.
// nscheck itself links Ginkgo and Gomega (and their dependencies), the
// report renderers and the kernel decompressors of `nscheck vm`; a helper
// needs none of them. This binary links exactly what helpers run
// (internal/helpermode: the helper protocol, every suite's actions and
// checks, the namespace probes), so a spawn costs little more than the
// kernel's floor. What only the host runs stays out (deps_test.go): the
// diagnosis (kernel config parsing, gzip), reports, the net package (see
// internal/rawsock). A nscheck built without it (go install) re-executes
// itself and serves the request from internal/helpermode's init function,
// before most of what only the host needs is initialised.
package main

import (
	"fmt"
	"os"

	"github.com/nscheck/nscheck/helper"
	_ "github.com/nscheck/nscheck/internal/helpermode" // serves a helper request, in its init
)

func main() {
	helper.Main() // an action helpermode did not know: the parent gets the error
	fmt.Fprintln(os.Stderr, "nscheck-helper: this binary only runs as a helper of nscheck")
	os.Exit(2)
}
