package markdown

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
)

// cells splits a table row on the pipes that are not escaped, as GitHub
// does; nil when line is not a table row.
func cells(line string) []string {
	if !strings.HasPrefix(line, "|") {
		return nil
	}
	var out []string
	var cur strings.Builder
	for i := 1; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteString(`\|`)
			i++
		case line[i] == '|':
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return out
}

// tableRows returns the rows of every table in md, checking that each has
// as many cells as its header.
func tableRows(t *testing.T, md string) [][]string {
	t.Helper()
	var rows [][]string
	width := 0
	for _, line := range strings.Split(md, "\n") {
		c := cells(line)
		if c == nil {
			width = 0
			continue
		}
		if width == 0 {
			width = len(c)
		} else if len(c) != width {
			t.Errorf("row has %d cells, header %d: %q", len(c), width, line)
		}
		rows = append(rows, c)
	}
	return rows
}

func renderMD(t *testing.T, r *report.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReportTable(t *testing.T) {
	r := rendertest.Load(t, "rootless")
	md := renderMD(t, r)
	rows := tableRows(t, md)
	if len(rows) != 2+len(r.Results) { // header, delimiter, one per property
		t.Fatalf("%d table rows for %d results:\n%s", len(rows), len(r.Results), md)
	}
	rendertest.Contains(t, "markdown", md,
		"## nscheck: ci-rootless/6.18.44-fc-v782",
		"**4 passed, 0 failed, 4 skipped in ",
		"rootless (euid 65534)",
		"| ⏭️ skipped | `uts.hostname-local` | uts | the kernel refused CLONE_NEWUTS\\|CLONE_NEWUSER with ENOSPC",
		"| ✅ passed | `pid.child-is-init` | pid | control detected |",
	)
	if strings.Contains(md, "### Failures") {
		t.Error("a report without failures has a Failures section")
	}
}

func TestFailuresEscaped(t *testing.T) {
	md := renderMD(t, rendertest.Broken())
	tableRows(t, md) // pipes in reasons must not split cells
	if strings.Contains(md, "<script>") {
		t.Errorf("raw HTML from the report reached the markdown:\n%s", md)
	}
	rendertest.Contains(t, "markdown", md,
		"- ❌ run error: host changed during the run: mount &lt;x&gt; added",
		"### Failures",
		"<details><summary>evidence</summary>",
		"&lt;script&gt;",
	)
	// The evidence holds ``` : its fence must be longer, and closed.
	fences := regexp.MustCompile("(?m)^````json$").FindAllString(md, -1)
	if len(fences) != 1 || !strings.Contains(md, "\n````\n") {
		t.Errorf("evidence fence not lengthened past the backticks inside:\n%s", md)
	}
	if !strings.Contains(md, "isolation is broken") {
		t.Error("no verdict line")
	}
}

func TestGrid(t *testing.T) {
	reps := rendertest.All(t)
	var b bytes.Buffer
	if err := WriteGrid(&b, reps); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	rows := tableRows(t, md)
	// header, delimiter, counts, one per property
	if len(rows) != 3+len(reps[0].Results) {
		t.Fatalf("%d rows:\n%s", len(rows), md)
	}
	if got := strings.Join(rows[0], ","); got != "property,ci-root,ci-rootless,ci-broken" {
		t.Errorf("header %s", got)
	}
	if got := strings.Join(rows[2][1:], ","); got != "8 / 0 / 0,4 / 0 / 4,0 / 8 / 0" {
		t.Errorf("counts %s", got)
	}
	for _, row := range rows[3:] {
		if row[1] != "✅" || !strings.HasPrefix(row[3], "❌ harness error") {
			t.Errorf("row %q", row)
		}
	}
	if !strings.Contains(md, "⏭️ the kernel refused CLONE_NEWIPC\\|CLONE_NEWUSER") {
		t.Errorf("skip reason missing in the grid:\n%s", md)
	}
}

func TestGridAbsentCell(t *testing.T) {
	a, b := rendertest.Load(t, "root"), rendertest.Broken()
	var buf bytes.Buffer
	if err := WriteGrid(&buf, []*report.Report{a, b}); err != nil {
		t.Fatal(err)
	}
	rows := tableRows(t, buf.String())
	found := false
	for _, row := range rows {
		if row[0] == "`ipc.distinct-ns`" {
			found = row[2] == "—"
		}
	}
	if !found {
		t.Errorf("a property missing from one report is not shown as —:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "- ❌ run error on node \"7\" &lt;a&gt;|b/6.1.0-28-cloud-amd64") {
		t.Errorf("run errors of a column missing:\n%s", buf.String())
	}
}

func TestUntrustedSaidOnce(t *testing.T) {
	r := rendertest.Broken()
	r.Untrusted = []report.Untrusted{{Cause: "the kernel did not create a new mount namespace", Properties: []string{"ipc.distinct-ns", "uts.hostname-local"}}}
	md := renderMD(t, r)
	if n := strings.Count(md, "the kernel did not create a new mount namespace"); n != 1 {
		t.Errorf("the untrusted cause is said %d times:\n%s", n, md)
	}
	rendertest.Contains(t, "markdown", md, "- ⚠️ "+report.UntrustedLine(r.Untrusted[0]))
}
