package matrix

import (
	"encoding/json"
	"fmt"
	"html/template"
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

// WriteMarkdown writes the grid as a GitHub-flavoured Markdown table.
func (m *Matrix) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| property |")
	for _, c := range m.Columns {
		fmt.Fprintf(&b, " %s |", mdEscape(c.Name))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(m.Columns)))
	b.WriteByte('\n')
	for _, r := range m.Rows {
		fmt.Fprintf(&b, "| `%s` |", r.ID)
		for _, c := range r.Cells {
			fmt.Fprintf(&b, " %s |", cellText(c))
		}
		b.WriteByte('\n')
	}
	b.WriteString("| passed/failed/skipped |")
	for _, c := range m.Columns {
		fmt.Fprintf(&b, " %s |", summaryText(c.Summary))
	}
	b.WriteByte('\n')
	if len(m.Notes) > 0 {
		b.WriteByte('\n')
		for i, n := range m.Notes {
			fmt.Fprintf(&b, "%d. %s\n", i+1, mdEscape(oneLine(n)))
		}
	}
	var errs []string
	for _, c := range m.Columns {
		for _, e := range c.Errors {
			errs = append(errs, fmt.Sprintf("- **%s**: %s\n", mdEscape(c.Name), mdEscape(oneLine(e))))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n" + strings.Join(errs, ""))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var mdReplacer = strings.NewReplacer(`|`, `\|`, `*`, `\*`, `_`, `\_`, "`", "\\`", `<`, `&lt;`, `[`, `\[`)

func mdEscape(s string) string { return mdReplacer.Replace(s) }

// WriteJSON writes the grid as JSON (schema "nscheck-matrix/v1").
func (m *Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Schema string `json:"schema"`
		*Matrix
	}{"nscheck-matrix/v1", m})
}

// WriteHTML writes the grid as a standalone HTML page.
func (m *Matrix) WriteHTML(w io.Writer) error {
	return htmlPage.Execute(w, m)
}

var htmlPage = template.Must(template.New("matrix").Funcs(template.FuncMap{
	"word": word, "sum": summaryText, "inc": func(i int) int { return i + 1 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nscheck matrix</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
td.passed{background:#dfd}td.failed{background:#fdd}td.skipped{background:#ffd}td.absent{color:#888}
code{font-size:.95em}
</style></head><body>
<h1>nscheck: kernel &times; property matrix</h1>
<table>
<thead><tr><th>property</th>{{range .Columns}}<th>{{.Name}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><td><code>{{.ID}}</code></td>{{range .Cells}}<td class="{{.State}}">{{word .State}}{{if .Note}} <a href="#note-{{.Note}}">[{{.Note}}]</a>{{end}}</td>{{end}}</tr>
{{end}}<tr><th>passed/failed/skipped</th>{{range .Columns}}<th>{{sum .Summary}}</th>{{end}}</tr>
</tbody></table>
{{if .Notes}}<ol>{{range $i, $n := .Notes}}<li id="note-{{inc $i}}">{{$n}}</li>{{end}}</ol>{{end}}
{{range .Columns}}{{$c := .Name}}{{range .Errors}}<p class="error"><b>{{$c}}</b>: {{.}}</p>{{end}}{{end}}
</body></html>
`))
