// Package markdown renders nscheck reports as GitHub-flavoured Markdown,
// for $GITHUB_STEP_SUMMARY and pull-request comments: a summary line, a
// table of the properties, and the failures with their evidence folded
// in <details> blocks (GitHub renders those).
package markdown

import (
	"fmt"
	"io"
	"strings"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/report"
)

var icon = map[string]string{report.Passed: "✅", report.Failed: "❌", report.Skipped: "⏭️"}

// verdict is "✅ passed"; the word is there for readers without emoji and
// for grep.
func verdict(state string) string { return strings.TrimSpace(icon[state] + " " + state) }

// Write writes one report.
func Write(w io.Writer, r *report.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## nscheck: %s\n\n", r.Name())
	fmt.Fprintf(&b, "kernel `%s` (%s), %s (euid %d)", code(r.Kernel.Release), r.Kernel.Machine, r.Privilege.Mode, r.Privilege.EUID)
	if r.Host != "" {
		fmt.Fprintf(&b, ", host `%s`", code(r.Host))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "**%s**", report.SummaryLine(r))
	if r.OK() {
		b.WriteString(": no property failed.\n\n")
	} else {
		b.WriteString(": isolation is broken or the run failed.\n\n")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "- ❌ run error: %s\n", inline(e))
	}
	for _, u := range r.Untrusted {
		fmt.Fprintf(&b, "- ⚠️ %s\n", inline(report.UntrustedLine(u)))
	}
	if len(r.Errors) > 0 || len(r.Untrusted) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| verdict | property | namespace | reason / control |\n|---|---|---|---|\n")
	var failed []report.Result
	for _, s := range render.Sections(r) {
		for _, res := range s.Results {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", verdict(res.State), code(res.ID), cell(res.Namespace), cell(render.Detail(res)))
			if res.State == report.Failed {
				failed = append(failed, res)
			}
		}
	}
	if len(failed) > 0 {
		b.WriteString("\n### Failures\n")
		for _, res := range failed {
			fmt.Fprintf(&b, "\n**`%s`** %s: %s\n", code(res.ID), inline(res.Title), inline(res.Reason))
			writeEvidence(&b, res)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteGrid writes several reports as one table: a row per property, a
// column per report.
func WriteGrid(w io.Writer, reports []*report.Report) error {
	g := render.NewGrid(reports)
	var b strings.Builder
	fmt.Fprintf(&b, "## nscheck matrix: %d reports, %d properties\n\n", len(g.Columns), len(g.Rows))
	b.WriteString("| property |")
	for _, c := range g.Columns {
		fmt.Fprintf(&b, " %s |", cell(c.Name))
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(g.Columns)) + "\n")
	b.WriteString("| *passed / failed / skipped* |")
	for _, c := range g.Columns {
		s := c.Report.Summary
		fmt.Fprintf(&b, " %d / %d / %d |", s.Passed, s.Failed, s.Skipped)
	}
	b.WriteString("\n")
	for _, row := range g.Rows {
		fmt.Fprintf(&b, "| `%s` |", code(row.ID))
		for _, res := range row.Cells {
			switch {
			case res == nil:
				b.WriteString(" — |")
			case res.State == report.Passed:
				fmt.Fprintf(&b, " %s |", icon[res.State])
			default:
				// The reason goes in the cell, shortened: the table is a
				// summary, the per-report output has the rest.
				fmt.Fprintf(&b, " %s %s |", icon[res.State], cell(shorten(res.Reason, 80)))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n✅ passed, ❌ failed, ⏭️ skipped, — not run\n")
	for _, c := range g.Columns {
		for _, e := range c.Report.Errors {
			fmt.Fprintf(&b, "- ❌ run error on %s: %s\n", inline(c.Name), inline(e))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEvidence(b *strings.Builder, res report.Result) {
	ev := render.Evidence(res)
	if ev == "" {
		return
	}
	// A fence longer than any backtick run in the evidence cannot be closed
	// by it.
	fence := "```"
	for strings.Contains(ev, fence) {
		fence += "`"
	}
	fmt.Fprintf(b, "\n<details><summary>evidence</summary>\n\n%sjson\n%s\n%s\n\n</details>\n", fence, ev, fence)
}

// inline makes s safe in running text: one line, no HTML.
func inline(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return htmlEscaper.Replace(s)
}

// cell makes s safe in a table cell: inline, and pipes escaped.
func cell(s string) string { return strings.ReplaceAll(inline(s), "|", `\|`) }

// code makes s safe inside a `code span` in a table: no backticks, no pipes
// (GitHub splits cells on pipes even inside code spans).
func code(s string) string {
	return strings.NewReplacer("`", "'", "|", `\|`, "\n", " ").Replace(s)
}

var htmlEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;")

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
