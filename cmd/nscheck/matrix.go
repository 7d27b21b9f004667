package main

import (
	"io"
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
	md := fs.String("markdown", "", "also write the grid as Markdown to `FILE` (- for stdout)")
	html := fs.String("html", "", "also write the grid as an HTML page to `FILE` (- for stdout)")
	js := fs.String("json", "", "also write the grid as JSON to `FILE` (- for stdout)")
	noColor := fs.Bool("no-color", false, "never colour the output (NO_COLOR is honoured too)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return fail(exitUsage, "matrix: name at least one report")
	}
	reps, code := readReports(fs.Args())
	if reps == nil {
		return code
	}
	m := matrix.Build(reps)
	toStdout := false
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{*md, m.WriteMarkdown}, {*html, m.WriteHTML}, {*js, m.WriteJSON}} {
		if out.path == "" {
			continue
		}
		toStdout = toStdout || out.path == "-"
		if err := report.WriteAtomic(out.path, out.write); err != nil {
			return fail(exitFail, "matrix: %v", err)
		}
	}
	if !toStdout {
		if err := m.WriteText(os.Stdout, useColor(os.Stdout, *noColor)); err != nil {
			return fail(exitFail, "matrix: %v", err)
		}
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
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return fail(exitUsage, "diff: want two reports, OLD and NEW")
	}
	reps, code := readReports(fs.Args())
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
