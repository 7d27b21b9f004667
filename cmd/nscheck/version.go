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
	switch exe := helper.Exe(); {
	case exe != helper.SelfExe:
		fmt.Println("helper: the embedded lean helper binary (from a sealed memfd)")
	case helper.EmbeddedError() != nil:
		fmt.Printf("helper: nscheck itself; the embedded helper could not be loaded: %v\n", helper.EmbeddedError())
	default:
		fmt.Println("helper: nscheck itself, served before the host's packages initialise (built without the lean helper; `make build` embeds it)")
	}
	return exitOK
}
