// Command write puts the lean helpers of a release into the module's
// release directory: `make release` runs it in the release's worktree as
// `go run ./internal/release/write VERSION`, from the module root.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nscheck/nscheck/internal/release"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/release/write VERSION (from the module root)")
		os.Exit(2)
	}
	files, err := release.Files(".", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(2)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(release.Dir, name), data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "release:", err)
			os.Exit(1)
		}
	}
}
