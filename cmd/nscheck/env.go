package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/nscheck/nscheck/internal/diag"
	"github.com/nscheck/nscheck/internal/ownview"
	"github.com/nscheck/nscheck/internal/report"
)

func init() {
	register(&command{name: "env", summary: "diagnose the environment: kernel config, sysctls, LSM, privilege, live probes, and the fix", run: envCmd})
}

func envCmd(args []string) int {
	fs := newFlags("env", "env [--config FILE] [--json FILE] [--no-probe]")
	config := fs.String("config", "", "use the kernel config in `FILE` (plain or gzip) instead of looking for the running kernel's")
	jsonOut := fs.String("json", "", "write the diagnosis as JSON to `FILE` (- for stdout)")
	noProbe := fs.Bool("no-probe", false, "do not create namespaces: judge from the config and the sysctls alone")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "env: unexpected argument %q", fs.Arg(0))
	}
	// The same view as a run gets (see run), so that env predicts it;
	// --no-probe creates no namespace, this one included.
	if !*noProbe {
		if code, done := ownview.Ensure(); done {
			return code
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := diag.Diagnose(ctx, diag.Options{ConfigPath: *config, NoProbe: *noProbe})
	if err != nil {
		return fail(exitUsage, "env: %v", err)
	}
	text := io.Writer(os.Stdout)
	if *jsonOut == "-" {
		text = os.Stderr
	}
	if err := diag.WriteText(text, d); err != nil {
		return fail(exitFail, "env: write: %v", err)
	}
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, d); err != nil {
			return fail(exitFail, "env: write --json: %v", err)
		}
	}
	if len(d.Unavailable()) > 0 {
		return exitFail
	}
	return exitOK
}

// writeJSONFile writes v as indented JSON to path atomically ("-" is stdout).
func writeJSONFile(path string, v any) error {
	return report.WriteAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
