package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nscheck/nscheck/internal/matrix"
	"github.com/nscheck/nscheck/internal/render/html"
	"github.com/nscheck/nscheck/internal/render/junit"
	"github.com/nscheck/nscheck/internal/render/markdown"
	"github.com/nscheck/nscheck/internal/render/prom"
	"github.com/nscheck/nscheck/internal/report"
)

// textStyle is how the text output looks (the other formats have no
// options): verdicts coloured when color is set, evidence with verbose,
// failures and the summary only with quiet.
type textStyle struct {
	color, verbose, quiet bool
}

// An output is one format nscheck writes, for one report (`nscheck run`)
// and for several side by side (`nscheck matrix`). The one table below
// drives the flags and the writing of both commands, so that a format
// means the same in each and a grid's column names (render.ColumnNames)
// are the same in every format of it.
type output struct {
	// name is the flag (--name FILE); text has none: it goes to stdout.
	name string
	// runUsage and gridUsage are the flag's help for run and for matrix;
	// "" when that command has no such output.
	runUsage, gridUsage string
	one                 func(w io.Writer, r *report.Report, s textStyle) error
	grid                func(w io.Writer, reps []*report.Report, s textStyle) error
}

const textOutput = "text"

var outputTable = []output{
	{
		name: textOutput,
		one: func(w io.Writer, r *report.Report, s textStyle) error {
			return report.WriteText(w, r, report.TextOptions{Color: s.color, Verbose: s.verbose, Quiet: s.quiet})
		},
		grid: func(w io.Writer, reps []*report.Report, s textStyle) error {
			return matrix.Build(reps).WriteText(w, s.color)
		},
	},
	{
		name:      "json",
		runUsage:  "write the nscheck/v1 JSON report to `FILE` (- for stdout)",
		gridUsage: "write the grid as JSON (nscheck-matrix/v1) to `FILE` (- for stdout)",
		one:       func(w io.Writer, r *report.Report, _ textStyle) error { return report.WriteJSON(w, r) },
		grid:      func(w io.Writer, reps []*report.Report, _ textStyle) error { return matrix.Build(reps).WriteJSON(w) },
	},
	{
		name:     "junit",
		runUsage: "write a JUnit XML report to `FILE`",
		one:      func(w io.Writer, r *report.Report, _ textStyle) error { return junit.Write(w, r) },
	},
	{
		name:      "html",
		runUsage:  "write a self-contained HTML page of the report to `FILE`",
		gridUsage: "write the grid as a self-contained HTML page to `FILE`",
		one:       func(w io.Writer, r *report.Report, _ textStyle) error { return html.Write(w, r) },
		grid:      func(w io.Writer, reps []*report.Report, _ textStyle) error { return html.WriteGrid(w, reps) },
	},
	{
		name:      "markdown",
		runUsage:  "write the report as Markdown to `FILE` (e.g. \"$GITHUB_STEP_SUMMARY\")",
		gridUsage: "write the grid as a Markdown table to `FILE` (e.g. \"$GITHUB_STEP_SUMMARY\")",
		one:       func(w io.Writer, r *report.Report, _ textStyle) error { return markdown.Write(w, r) },
		grid:      func(w io.Writer, reps []*report.Report, _ textStyle) error { return markdown.WriteGrid(w, reps) },
	},
	{
		// A grid has no metrics: node_exporter scrapes one node's report.
		name:     "prometheus",
		runUsage: "write Prometheus metrics to `FILE` (for node_exporter's textfile collector)",
		one:      func(w io.Writer, r *report.Report, _ textStyle) error { return prom.Write(w, r) },
	},
}

// outputs are the files one command was asked to write.
type outputs struct {
	grid bool
	// paths are the flag variables, by format name.
	paths map[string]*string
}

// addOutputFlags registers the flag of every format of the table that the
// command has: run's (grid false) or matrix's (grid true).
func addOutputFlags(fs *flag.FlagSet, grid bool) *outputs {
	o := &outputs{grid: grid, paths: map[string]*string{}}
	for _, out := range outputTable {
		usage := out.runUsage
		if grid {
			usage = out.gridUsage
		}
		if out.name == textOutput || usage == "" {
			continue
		}
		o.paths[out.name] = fs.String(out.name, "", usage)
	}
	return o
}

// path is the file asked for with --name ("" when none).
func (o *outputs) path(name string) string {
	if p := o.paths[name]; p != nil {
		return *p
	}
	return ""
}

// stdout reports whether one of the files is "-" (standard output): the
// text output then goes to stderr.
func (o *outputs) stdout() bool {
	for name := range o.paths {
		if o.path(name) == "-" {
			return true
		}
	}
	return false
}

// check makes an output that cannot be written a usage error before any
// work: each path ("-" aside) must be in an existing directory.
func (o *outputs) check() error {
	for _, out := range outputTable {
		path := o.path(out.name)
		if path == "" || path == "-" {
			continue
		}
		dir := filepath.Dir(path)
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", out.name, path, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("--%s %s: %s is not a directory", out.name, path, dir)
		}
	}
	return nil
}

// write writes the text output (to stdout, or to stderr when a file
// output is stdout) and every file asked for, each atomically, from one
// report (reps[0], run) or from several side by side (matrix).
func (o *outputs) write(reps []*report.Report, s textStyle, noColor bool) error {
	for _, out := range outputTable {
		s := s
		fill := func(w io.Writer) error {
			if o.grid {
				return out.grid(w, reps, s)
			}
			return out.one(w, reps[0], s)
		}
		if out.name == textOutput {
			text := os.Stdout
			if o.stdout() {
				text = os.Stderr
			}
			s.color = useColor(text, noColor)
			if err := fill(text); err != nil {
				return fmt.Errorf("write the report: %w", err)
			}
			continue
		}
		path := o.path(out.name)
		if path == "" {
			continue
		}
		if err := report.WriteAtomic(path, fill); err != nil {
			return fmt.Errorf("write --%s: %w", out.name, err)
		}
	}
	return nil
}
