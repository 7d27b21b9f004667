// Command build is `make build`: nscheck with its lean helper embedded,
// built as package leanbuild says, run from the module root as
//
//	go run ./internal/leanbuild/build [-go GO] [-arch GOARCH] -o BIN
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nscheck/nscheck/internal/leanbuild"
)

func main() {
	var o leanbuild.Options
	out := flag.String("o", "", "write nscheck to `BIN`")
	flag.StringVar(&o.Go, "go", "", "the go command (default: go on PATH)")
	flag.StringVar(&o.GOARCH, "arch", "", "the target `GOARCH` (default: this machine's)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/leanbuild/build [-go GO] [-arch GOARCH] -o BIN (from the module root)")
		os.Exit(2)
	}
	if err := leanbuild.Nscheck(".", *out, o); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}
