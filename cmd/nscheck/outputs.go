package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nscheck/nscheck/internal/render/html"
	"github.com/nscheck/nscheck/internal/render/markdown"
	"github.com/nscheck/nscheck/internal/render/prom"
	"github.com/nscheck/nscheck/internal/report"
)

// outputs are the report files a command writes besides its own output:
// --html, --markdown and --prometheus, each written atomically.
type outputs struct {
	html, markdown, prometheus string
}

// addOutputFlags registers --html and --markdown on fs, and --prometheus
// when withProm (a single report's metrics; a grid has none).
func addOutputFlags(fs *flag.FlagSet, withProm bool) *outputs {
	o := &outputs{}
	fs.StringVar(&o.html, "html", "", "write a self-contained HTML page of the report to `FILE`")
	fs.StringVar(&o.markdown, "markdown", "", "write the report as Markdown to `FILE` (e.g. \"$GITHUB_STEP_SUMMARY\")")
	if withProm {
		fs.StringVar(&o.prometheus, "prometheus", "", "write Prometheus metrics to `FILE` (for node_exporter's textfile collector)")
	}
	return o
}

// write writes the files asked for, from one report.
func (o *outputs) write(r *report.Report) error {
	return o.each(
		func(w io.Writer) error { return html.Write(w, r) },
		func(w io.Writer) error { return markdown.Write(w, r) },
		func(w io.Writer) error { return prom.Write(w, r) },
	)
}

// writeGrid writes the files asked for, from several reports side by side
// (nscheck matrix).
func (o *outputs) writeGrid(reports []*report.Report) error {
	return o.each(
		func(w io.Writer) error { return html.WriteGrid(w, reports) },
		func(w io.Writer) error { return markdown.WriteGrid(w, reports) },
		nil,
	)
}

func (o *outputs) each(htmlFn, mdFn, promFn func(io.Writer) error) error {
	for _, out := range []struct {
		flag, path string
		fill       func(io.Writer) error
	}{{"--html", o.html, htmlFn}, {"--markdown", o.markdown, mdFn}, {"--prometheus", o.prometheus, promFn}} {
		if out.path == "" || out.fill == nil {
			continue
		}
		if err := report.WriteAtomic(out.path, out.fill); err != nil {
			return fmt.Errorf("write %s: %w", out.flag, err)
		}
	}
	return nil
}

// stdout reports whether one of the files is "-" (standard output).
func (o *outputs) stdout() bool {
	return o.html == "-" || o.markdown == "-" || o.prometheus == "-"
}

// checkOutputPaths makes an output that cannot be written a usage error
// before any work: each path ("-" aside) must be in an existing directory.
func checkOutputPaths(paths map[string]string) error {
	for flagName, path := range paths {
		if path == "" || path == "-" {
			continue
		}
		dir := filepath.Dir(path)
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flagName, path, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("%s %s: %s is not a directory", flagName, path, dir)
		}
	}
	return nil
}

// paths names the files of o by their flags, for checkOutputPaths.
func (o *outputs) paths() map[string]string {
	return map[string]string{"--html": o.html, "--markdown": o.markdown, "--prometheus": o.prometheus}
}
