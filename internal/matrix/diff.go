package matrix

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/report"
)

// Change is one property whose verdict differs between two reports.
type Change struct {
	ID string `json:"id"`
	// Old and New are states, or Absent.
	Old       string `json:"old"`
	New       string `json:"new"`
	OldReason string `json:"old_reason,omitempty"`
	NewReason string `json:"new_reason,omitempty"`
}

// Diff is what changed from one report to another.
type Diff struct {
	Old, New string
	// Regressions got worse: passed -> skipped, failed or absent, or
	// skipped -> failed.
	Regressions []Change
	// Improvements got better: the reverse.
	Improvements []Change
	// Others changed without getting better or worse: a property new in
	// NEW, one absent from NEW that had not passed, another skip reason.
	Others []Change
	// NewErrors are run errors of NEW that OLD did not have (a kernel that
	// no longer boots); FixedErrors the reverse.
	NewErrors, FixedErrors []string
	// Unchanged counts properties with the same verdict and reason.
	Unchanged int
}

// Regressed reports whether anything got worse.
func (d *Diff) Regressed() bool { return len(d.Regressions) > 0 || len(d.NewErrors) > 0 }

// rank orders states from worst to best; an absent property ranks with a
// failure only when it had passed (see Compare).
var rank = map[string]int{report.Failed: 0, report.Skipped: 1, report.Passed: 2}

// Compare diffs two reports.
func Compare(old, new *report.Report) *Diff {
	labels := render.ColumnNames([]*report.Report{old, new})
	d := &Diff{Old: labels[0], New: labels[1]}
	olds, news := index(old), index(new)
	ids := maps.Clone(olds)
	maps.Copy(ids, news)
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		o, inOld := olds[id]
		n, inNew := news[id]
		c := Change{ID: id, Old: Absent, New: Absent}
		if inOld {
			c.Old, c.OldReason = o.State, o.Reason
		}
		if inNew {
			c.New, c.NewReason = n.State, n.Reason
		}
		switch {
		case c.Old == c.New && c.OldReason == c.NewReason:
			d.Unchanged++
		case !inNew && c.Old == report.Passed:
			d.Regressions = append(d.Regressions, c) // a check that passed no longer runs
		case !inOld || !inNew:
			d.Others = append(d.Others, c)
		case rank[c.New] < rank[c.Old]:
			d.Regressions = append(d.Regressions, c)
		case rank[c.New] > rank[c.Old]:
			d.Improvements = append(d.Improvements, c)
		default:
			d.Others = append(d.Others, c)
		}
	}
	oe, ne := errorSet(old), errorSet(new)
	for _, e := range errorList(new) {
		if !oe[e] {
			d.NewErrors = append(d.NewErrors, e)
		}
	}
	for _, e := range errorList(old) {
		if !ne[e] {
			d.FixedErrors = append(d.FixedErrors, e)
		}
	}
	return d
}

func index(r *report.Report) map[string]report.Result {
	m := make(map[string]report.Result, len(r.Results))
	for _, res := range r.Results {
		m[res.ID] = res
	}
	return m
}

// errorList is a report's run errors without the console lines that go
// with a failed boot (they differ from boot to boot).
func errorList(r *report.Report) []string {
	var out []string
	for _, e := range r.Errors {
		if !strings.HasPrefix(e, "console: ") {
			out = append(out, e)
		}
	}
	return out
}

func errorSet(r *report.Report) map[string]bool {
	m := map[string]bool{}
	for _, e := range errorList(r) {
		m[e] = true
	}
	return m
}

// WriteText writes the diff for people: regressions first, then
// improvements, then other changes, and a closing count.
func (d *Diff) WriteText(w io.Writer, color bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nscheck diff: %s -> %s\n", d.Old, d.New)
	section := func(title string, cs []Change) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", title, len(cs))
		width := 0
		for _, c := range cs {
			width = max(width, len(c.ID))
		}
		for _, c := range cs {
			fmt.Fprintf(&b, "  %-*s  %s -> %s", width, c.ID, stateText(c.Old, color), stateText(c.New, color))
			if c.New != report.Passed && c.NewReason != "" {
				fmt.Fprintf(&b, ": %s", oneLine(c.NewReason))
			} else if c.OldReason != "" && c.New == report.Passed {
				fmt.Fprintf(&b, " (was: %s)", oneLine(c.OldReason))
			}
			b.WriteByte('\n')
		}
	}
	errs := func(title string, es []string) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", title, len(es))
		for _, e := range es {
			fmt.Fprintf(&b, "  %s\n", oneLine(e))
		}
	}
	section("regressions", d.Regressions)
	errs("new run errors", d.NewErrors)
	section("improvements", d.Improvements)
	errs("run errors gone", d.FixedErrors)
	section("other changes", d.Others)
	fmt.Fprintf(&b, "\n%d regressions, %d improvements, %d other changes, %d unchanged\n",
		len(d.Regressions)+len(d.NewErrors), len(d.Improvements), len(d.Others), d.Unchanged)
	_, err := io.WriteString(w, b.String())
	return err
}

func stateText(s string, color bool) string {
	if s == Absent {
		return Absent
	}
	return report.Verdict(s, color)
}
