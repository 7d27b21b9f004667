//go:build !helperbin

package main

import (
	_ "embed"
	"os"
	"runtime"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/initorder"
)

// Built without the lean helper (`go install`, a plain `go build`), nscheck
// runs its helpers from a copy of itself in which the packages helpers
// link initialise before all others (internal/initorder): a helper then
// serves its request from internal/helpermode's init after the lean
// helper's initialisers, not after a hundred of the host's.
//
// helperdeps.txt is `go list -deps ./internal/helpermode`, written by
// `make generate`; TestHelperDepsUpToDate fails when it is stale.
//
//go:embed helperdeps.txt
var helperDeps string

func init() {
	if helper.IsHelper() {
		return // a helper's own helpers execute what it is: /proc/self/exe
	}
	helper.UseImage("nscheck itself, the helpers' packages initialised first", func(w *os.File) error {
		return writeHelperImage(w, helper.SelfExe)
	})
}

// writeHelperImage writes the copy of exe (nscheck) that helpers execute.
func writeHelperImage(w *os.File, exe string) error {
	deps, err := initorder.ParseDeps(helperDeps)
	if err != nil {
		return err
	}
	_, err = initorder.Copy(w, exe, deps.First(runtime.Version()))
	return err
}
