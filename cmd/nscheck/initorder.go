//go:build !helperbin

package main

import (
	"embed"
	"io/fs"
	"os"
	"runtime"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/initorder"
	"github.com/nscheck/nscheck/internal/release"
)

// Built without the lean helper embedded by `make build` (`go install`, a
// plain `go build`), nscheck runs its helpers from the lean helper of its
// release, when it is a release (go install ...@vX.Y.Z or @latest) and the
// release carries one for this architecture (internal/release). Otherwise
// it runs them from a copy of itself in which the packages helpers link
// initialise before all others (internal/initorder): a helper then serves
// its request from internal/helpermode's init after the lean helper's
// initialisers, not after a hundred of the host's.
//
// helperdeps.txt is `go list -deps ./internal/helpermode`, written by
// `make generate`; TestHelperDepsUpToDate fails when it is stale.
//
//go:embed helperdeps.txt
var helperDeps string

//go:embed release
var releaseFiles embed.FS

func init() {
	if helper.IsHelper() {
		return // a helper's own helpers execute what it is: /proc/self/exe
	}
	version := buildVersion()
	files, _ := fs.Sub(releaseFiles, "release") // a valid directory name
	gz, why := release.Helper(files, version, runtime.GOARCH)
	if why == nil {
		helper.UseImage("the lean helper of release "+version, func(w *os.File) error { return release.Write(w, gz) })
		return
	}
	helper.UseImage("nscheck itself, the helpers' packages initialised first ("+why.Error()+")", func(w *os.File) error {
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
