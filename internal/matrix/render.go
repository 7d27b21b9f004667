package matrix

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/nscheck/nscheck/internal/report"
)

// WriteText writes the grid as aligned columns (verdicts coloured when
// color is set), then the footnotes and the reports' errors.
func (m *Matrix) WriteText(w io.Writer, color bool) error {
	head := []string{"property"}
	for _, c := range m.Columns {
		head = append(head, c.Name)
	}
	lines := [][]string{head}
	for _, r := range m.Rows {
		line := []string{r.ID}
		for _, c := range r.Cells {
			line = append(line, cellText(c))
		}
		lines = append(lines, line)
	}
	sum := []string{"passed/failed/skipped"}
	for _, c := range m.Columns {
		sum = append(sum, summaryText(c.Summary))
	}
	lines = append(lines, sum)
	widths := make([]int, len(head))
	for _, l := range lines {
		for i, f := range l {
			widths[i] = max(widths[i], len(f))
		}
	}
	var b strings.Builder
	for li, l := range lines {
		for i, f := range l {
			text := f
			if color && li > 0 && li < len(lines)-1 && i > 0 {
				// Same width: only the verdict word gets the colour codes.
				st := m.Rows[li-1].Cells[i-1].State
				if st != Absent {
					text = report.Verdict(st, true) + strings.TrimPrefix(f, word(st))
				}
			}
			b.WriteString(text)
			if i < len(l)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len(f)+2))
			}
		}
		b.WriteByte('\n')
	}
	for i, n := range m.Notes {
		fmt.Fprintf(&b, "[%d] %s\n", i+1, oneLine(n))
	}
	for _, c := range m.Columns {
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "error: %s: %s\n", c.Name, e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the grid as JSON (schema "nscheck-matrix/v1").
func (m *Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Schema string `json:"schema"`
		*Matrix
	}{"nscheck-matrix/v1", m})
}
