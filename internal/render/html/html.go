// Package html renders nscheck reports as one self-contained HTML page: no
// external assets (the CSS is embedded, there is no script), so the file
// can be attached to a CI run or mailed and still opens offline.
//
// Write renders one report: the summary, a section per namespace type, each
// verdict in colour with its reason, the evidence in a <details> block.
// WriteGrid renders several reports (a kernel matrix, a fleet of nodes) as a
// property x report grid.
package html

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/report"
)

//go:embed style.css
var css string

//go:embed page.html.tmpl
var page string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"css":       func() template.CSS { return template.CSS(css) },
	"verdict":   func(state string) string { return strings.ToUpper(state) },
	"detail":    render.Detail,
	"evidence":  render.Evidence,
	"ms":        func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
	"untrusted": report.UntrustedLine,
}).Parse(page))

// Write writes the page for one report.
func Write(w io.Writer, r *report.Report) error {
	data := struct {
		Report   *report.Report
		Sections []render.Section
	}{r, render.Sections(r)}
	if err := tmpl.ExecuteTemplate(w, "report", data); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

// WriteGrid writes the page for several reports: one row per property, one
// column per report, in the order given.
func WriteGrid(w io.Writer, reports []*report.Report) error {
	if err := tmpl.ExecuteTemplate(w, "grid", render.NewGrid(reports)); err != nil {
		return fmt.Errorf("render html grid: %w", err)
	}
	return nil
}
