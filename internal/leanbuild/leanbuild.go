// Package leanbuild builds nscheck the way it ships, in one place: `make
// build` (through ./internal/leanbuild/build), the benchmarks, the tests
// that boot a static nscheck and `make release` all call it, so that what
// is measured, tested and released is built as what users run.
//
// A lean build is static (CGO_ENABLED=0: the same binary runs as a VM's
// init, in a FROM scratch container and on any distribution), trimmed
// (-trimpath: no build machine's paths in it) and stripped (-ldflags=-s -w:
// every helper process pays for its binary's size in page faults). nscheck
// itself embeds the lean helper (internal/helperbin), built first into
// cmd/nscheck where its embed directive reads it (-tags helperbin).
package leanbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// HelperPkg is the lean helper's main package.
const HelperPkg = "./internal/helperbin"

// EmbedPath is where, in the module, nscheck's build reads the lean helper
// it embeds.
const EmbedPath = "cmd/nscheck/nscheck-helper.bin"

// Options of a build.
type Options struct {
	// GOARCH is the target architecture ("" for the host's); the target
	// system is always linux.
	GOARCH string
	// Reproducible leaves out the VCS stamp (-buildvcs=false), so that the
	// same sources and toolchain give the same bytes (a release's helpers).
	Reproducible bool
	// Go is the go command ("" for the one on PATH).
	Go string
}

// Args are the go command's arguments that build pkgs (and any other
// build flags) into out the lean way.
func (o Options) Args(out string, pkgs ...string) []string {
	a := []string{"build", "-trimpath", "-ldflags=-s -w"}
	if o.Reproducible {
		a = append(a, "-buildvcs=false")
	}
	return append(append(a, "-o", out), pkgs...)
}

// Env is the environment of a lean build: this process's, with cgo off and
// the target set.
func (o Options) Env() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch())
}

func (o Options) arch() string {
	if o.GOARCH == "" {
		return runtime.GOARCH
	}
	return o.GOARCH
}

func (o Options) goCmd() string {
	if o.Go == "" {
		return "go"
	}
	return o.Go
}

// Build builds pkgs (package paths, or directories relative to root; build
// flags such as -tags may come first) of the module at root into out.
func Build(root, out string, o Options, pkgs ...string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build %v: %w", pkgs, err)
	}
	cmd := exec.Command(o.goCmd(), o.Args(abs, pkgs...)...)
	cmd.Dir = root
	cmd.Env = o.Env()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v for linux/%s: %w\n%s", pkgs, o.arch(), err, msg)
	}
	return nil
}

// Helper builds the lean helper of the module at root into out.
func Helper(root, out string, o Options) error {
	return Build(root, out, o, HelperPkg)
}

// Nscheck builds nscheck of the module at root into out with the lean
// helper embedded: the helper first, into EmbedPath, then nscheck.
func Nscheck(root, out string, o Options) error {
	if err := Helper(root, filepath.Join(root, EmbedPath), o); err != nil {
		return err
	}
	return Build(root, out, o, "-tags", "helperbin", "./cmd/nscheck")
}
