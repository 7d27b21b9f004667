// Package matrix puts many nscheck reports side by side (a kernel x
// property grid: one column per kernel or host, one row per property, each
// cell the verdict) and compares two reports (what changed between a kernel
// and its upgrade). It works on any nscheck/v1 reports: from `nscheck vm`,
// from `nscheck run` on a fleet of machines, from a CI matrix.
package matrix

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nscheck/nscheck/internal/report"
)

// Absent is the state of a property a report does not have.
const Absent = "absent"

// Matrix is the grid.
type Matrix struct {
	Columns []Column `json:"columns"`
	Rows    []Row    `json:"rows"`
	// Notes are the footnotes: the reasons of skips and failures, each
	// once, numbered from 1 in order of appearance.
	Notes []string `json:"notes"`
}

// Column is one report.
type Column struct {
	Name    string         `json:"name"`
	Host    string         `json:"host,omitempty"`
	Kernel  string         `json:"kernel"`
	Summary report.Summary `json:"summary"`
	// Errors are the report's run errors (a kernel that did not boot).
	Errors []string `json:"errors,omitempty"`
}

// Row is one property.
type Row struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Cells []Cell `json:"cells"`
}

// Cell is one property on one kernel.
type Cell struct {
	State string `json:"state"`
	// Note is the footnote number of the reason (0: none).
	Note int `json:"note,omitempty"`
}

// Build makes the grid of reps, columns in the order given, rows sorted
// by property id.
func Build(reps []*report.Report) *Matrix {
	m := &Matrix{Notes: []string{}}
	names := Labels(reps)
	ids := map[string]string{} // id -> title
	for i, r := range reps {
		m.Columns = append(m.Columns, Column{Name: names[i], Host: r.Host, Kernel: r.Kernel.Release, Summary: r.Summary, Errors: r.Errors})
		for _, res := range r.Results {
			if ids[res.ID] == "" {
				ids[res.ID] = res.Title
			}
		}
	}
	noteOf := map[string]int{}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		row := Row{ID: id, Title: ids[id]}
		for _, r := range reps {
			c := Cell{State: Absent}
			if res, ok := find(r, id); ok {
				c.State = res.State
				if res.State != report.Passed && res.Reason != "" {
					if noteOf[res.Reason] == 0 {
						m.Notes = append(m.Notes, res.Reason)
						noteOf[res.Reason] = len(m.Notes)
					}
					c.Note = noteOf[res.Reason]
				}
			}
			row.Cells = append(row.Cells, c)
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

func find(r *report.Report, id string) (report.Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return report.Result{}, false
}

// Labels names each report for a column: the kernel release when the
// reports come from one host (or from VMs), the host when they share one
// kernel, else host/release; repeated labels get "#2", "#3".
func Labels(reps []*report.Report) []string {
	sameHost, sameKernel := true, true
	for _, r := range reps[min(1, len(reps)):] {
		sameHost = sameHost && r.Host == reps[0].Host
		sameKernel = sameKernel && r.Kernel.Release == reps[0].Kernel.Release
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
		seen[out[i]]++
		if n := seen[out[i]]; n > 1 {
			out[i] = fmt.Sprintf("%s #%d", out[i], n)
		}
	}
	return out
}

// word is how a state shows in a cell.
func word(state string) string {
	switch state {
	case report.Passed:
		return "PASS"
	case report.Failed:
		return "FAIL"
	case report.Skipped:
		return "SKIP"
	}
	return "-"
}

// cellText is a cell as text: the word and the footnote mark.
func cellText(c Cell) string {
	if c.Note > 0 {
		return fmt.Sprintf("%s [%d]", word(c.State), c.Note)
	}
	return word(c.State)
}

// summaryText is a column's counts.
func summaryText(s report.Summary) string {
	return fmt.Sprintf("%d/%d/%d", s.Passed, s.Failed, s.Skipped)
}

// oneLine flattens s for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
