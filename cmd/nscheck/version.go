package main

import (
	"fmt"
	"runtime/debug"

	"github.com/nscheck/nscheck/helper"
)

func init() {
	register(&command{name: "version", summary: "print the version and how helpers are executed", run: versionCmd})
}

func versionCmd(args []string) int {
	fs := newFlags("version", "version")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fmt.Printf("nscheck %s\n", buildVersion())
	switch what, err := helper.Image(); {
	case what != "":
		fmt.Printf("helper: %s (an unnamed copy)\n", what)
	case err != nil:
		fmt.Printf("helper: nscheck itself, unchanged: %v\n", err)
	default:
		fmt.Println("helper: nscheck itself")
	}
	return exitOK
}

// buildVersion is the module version nscheck was built as: vX.Y.Z from go
// install at a release, a pseudo-version or "+dirty" from a tree, or
// "(devel)".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
