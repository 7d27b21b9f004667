package main

import (
	"os"

	"github.com/nscheck/nscheck/internal/matrix"
	"github.com/nscheck/nscheck/internal/report"
)

func init() {
	register(&command{name: "matrix", summary: "put reports side by side: kernels (or hosts) as columns, properties as rows", run: matrixCmd})
	register(&command{name: "diff", summary: "what changed between two reports: regressions first (exit 1 when there is one)", run: diffCmd})
}

func matrixCmd(args []string) int {
	fs := newFlags("matrix", "matrix REPORT... [--markdown FILE] [--html FILE] [--json FILE]")
	files := addOutputFlags(fs, true)
	noColor := fs.Bool("no-color", false, "never colour the output (NO_COLOR is honoured too)")
	paths, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		return fail(exitUsage, "matrix: name at least one report")
	}
	if err := files.check(); err != nil {
		return fail(exitUsage, "matrix: %v", err)
	}
	reps, code := readReports(paths)
	if reps == nil {
		return code
	}
	if err := files.write(reps, textStyle{}, *noColor); err != nil {
		return fail(exitFail, "matrix: %v", err)
	}
	for _, r := range reps {
		if !r.OK() {
			return exitFail
		}
	}
	return exitOK
}

func diffCmd(args []string) int {
	fs := newFlags("diff", "diff OLD NEW")
	noColor := fs.Bool("no-color", false, "never colour the output (NO_COLOR is honoured too)")
	paths, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(paths) != 2 {
		return fail(exitUsage, "diff: want two reports, OLD and NEW")
	}
	reps, code := readReports(paths)
	if reps == nil {
		return code
	}
	d := matrix.Compare(reps[0], reps[1])
	if err := d.WriteText(os.Stdout, useColor(os.Stdout, *noColor)); err != nil {
		return fail(exitFail, "diff: %v", err)
	}
	if d.Regressed() {
		return exitFail
	}
	return exitOK
}

// readReports decodes every report named; a file that is unreadable, not
// JSON or not an nscheck/v1 report is an input error (one line, exit 2).
func readReports(paths []string) ([]*report.Report, int) {
	reps := make([]*report.Report, 0, len(paths))
	for _, p := range paths {
		r, err := report.ReadFile(p)
		if err != nil {
			return nil, fail(exitUsage, "%v", err)
		}
		reps = append(reps, r)
	}
	return reps, exitOK
}
