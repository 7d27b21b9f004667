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
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	fmt.Printf("nscheck %s\n", version)
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
