// Package matrix puts many nscheck reports side by side (a kernel x
// property grid: one column per kernel or host, one row per property, each
// cell the verdict) and compares two reports (what changed between a kernel
// and its upgrade). It works on any nscheck/v1 reports: from `nscheck vm`,
// from `nscheck run` on a fleet of machines, from a CI matrix.
package matrix

import (
	"fmt"
	"strings"

	"github.com/nscheck/nscheck/internal/render"
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
	Name   string `json:"name"`
	Host   string `json:"host,omitempty"`
	Kernel string `json:"kernel"`
	// Machine is the kernel's architecture (uname -m: x86_64, aarch64).
	Machine string         `json:"machine,omitempty"`
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
// The layout (column names, row order) is render.NewGrid's, the one
// every format of a grid draws.
func Build(reps []*report.Report) *Matrix {
	m := &Matrix{Notes: []string{}}
	g := render.NewGrid(reps)
	for _, c := range g.Columns {
		r := c.Report
		m.Columns = append(m.Columns, Column{Name: c.Name, Host: r.Host, Kernel: r.Kernel.Release, Machine: r.Kernel.Machine, Summary: r.Summary, Errors: r.Errors})
	}
	noteOf := map[string]int{}
	for _, gr := range g.Rows {
		row := Row{ID: gr.ID, Title: gr.Title}
		for _, res := range gr.Cells {
			c := Cell{State: Absent}
			if res != nil {
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
