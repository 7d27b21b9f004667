// Package render holds what the report renderers (html, markdown, prom)
// share: one report grouped by namespace type, and several reports laid
// out as a property x report grid. The renderers draw these views; they do
// not decide grouping or ordering themselves, so every face of a report
// shows the same properties in the same order.
package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nscheck/nscheck/internal/report"
)

// Section is the results of one namespace type ("uts", "ipc" ...), in
// property id order.
type Section struct {
	Namespace string
	Results   []report.Result
	Summary   report.Summary
}

// Sections groups the results of r by namespace type, the sections in
// name order.
func Sections(r *report.Report) []Section {
	index := map[string]int{}
	var out []Section
	for _, res := range sortedResults(r.Results) {
		i, ok := index[res.Namespace]
		if !ok {
			i = len(out)
			index[res.Namespace] = i
			out = append(out, Section{Namespace: res.Namespace})
		}
		out[i].Results = append(out[i].Results, res)
		count(&out[i].Summary, res.State)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

func sortedResults(in []report.Result) []report.Result {
	out := append([]report.Result(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func count(s *report.Summary, state string) {
	switch state {
	case report.Passed:
		s.Passed++
	case report.Failed:
		s.Failed++
	case report.Skipped:
		s.Skipped++
	}
}

// Grid is several reports side by side: one column per report (a kernel
// or a host), one row per property that any of them has.
type Grid struct {
	Columns []Column
	Rows    []Row
}

// Column is one report of a grid.
type Column struct {
	Name   string // ColumnNames: the kernel, the host or both
	Report *report.Report
}

// Row is one property across the reports of a grid.
type Row struct {
	ID        string
	Namespace string
	Title     string
	// Cells has one entry per column; nil where that report lacks the
	// property (not run there: a filter, an older catalog).
	Cells []*report.Result
}

// NewGrid lays reports out in the order given; rows are sorted by id.
func NewGrid(reports []*report.Report) Grid {
	var g Grid
	rowOf := map[string]int{}
	names := ColumnNames(reports)
	for c, r := range reports {
		g.Columns = append(g.Columns, Column{Name: names[c], Report: r})
		for i := range r.Results {
			res := &r.Results[i]
			k, ok := rowOf[res.ID]
			if !ok {
				k = len(g.Rows)
				rowOf[res.ID] = k
				g.Rows = append(g.Rows, Row{ID: res.ID, Namespace: res.Namespace, Cells: make([]*report.Result, len(reports))})
			}
			if g.Rows[k].Title == "" {
				g.Rows[k].Title = res.Title
			}
			g.Rows[k].Cells[c] = res
		}
	}
	sort.Slice(g.Rows, func(i, j int) bool { return g.Rows[i].ID < g.Rows[j].ID })
	return g
}

// ColumnNames names each report for a column of a grid (in every format:
// text, Markdown, HTML, JSON): the kernel release when the
// reports come from one host (or from VMs), the host when they share one
// kernel, else host/release; prefixed with the architecture when the
// reports span several (aarch64/6.12.117+deb13-cloud-arm64: arch x
// kernel); suffixed with the guest's cgroup layout when guests of several
// layouts are compared ("6.1.0-57-cloud-amd64 (cgroup v1)"); repeated
// labels get "#2", "#3".
func ColumnNames(reps []*report.Report) []string {
	sameHost, sameKernel := true, true
	for _, r := range reps[min(1, len(reps)):] {
		sameHost = sameHost && r.Host == reps[0].Host
		sameKernel = sameKernel && r.Kernel.Release == reps[0].Kernel.Release
	}
	machines := map[string]bool{}
	for _, r := range reps {
		if r.Kernel.Machine != "" {
			machines[r.Kernel.Machine] = true
		}
	}
	// The cgroup layouts of guests (nscheck vm --cgroup), named when they
	// differ: the same kernel booted as two kinds of host.
	layouts := map[string]bool{}
	for _, r := range reps {
		if r.VM != nil && r.VM.Cgroup != "" {
			layouts[r.VM.Cgroup] = true
		}
	}
	out := make([]string, len(reps))
	seen := map[string]int{}
	for i, r := range reps {
		switch {
		case (sameHost || r.VM != nil) && r.Kernel.Release != "":
			out[i] = r.Kernel.Release
		case sameKernel && r.Host != "":
			out[i] = r.Host
		default:
			out[i] = r.Name()
		}
		if out[i] == "" {
			out[i] = "report"
		}
		if len(machines) > 1 && r.Kernel.Machine != "" {
			out[i] = r.Kernel.Machine + "/" + out[i]
		}
		if len(layouts) > 1 && r.VM != nil && r.VM.Cgroup != "" {
			out[i] += " (cgroup " + r.VM.Cgroup + ")"
		}
		seen[out[i]]++
		if n := seen[out[i]]; n > 1 {
			out[i] = fmt.Sprintf("%s #%d", out[i], n)
		}
	}
	return out
}

// Evidence renders a result's evidence as indented JSON ("" when there is
// none), the form every renderer shows inside its expandable block.
func Evidence(res report.Result) string {
	if len(res.Evidence) == 0 {
		return ""
	}
	// Not HTML-escaped here: each renderer escapes for its own format.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res.Evidence); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Detail is the one-line explanation shown next to a verdict: the reason
// of a failure or a skip, the control's verdict for a pass.
func Detail(res report.Result) string {
	if res.State == report.Passed {
		if res.ControlReason != "" && res.Control != "detected" {
			return "control " + res.Control + ": " + res.ControlReason
		}
		return "control " + res.Control
	}
	return res.Reason
}
