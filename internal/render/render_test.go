package render_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
)

func TestSectionsGroupByNamespace(t *testing.T) {
	r := rendertest.Load(t, "rootless")
	secs := render.Sections(r)
	var names []string
	total := report.Summary{}
	for _, s := range secs {
		names = append(names, s.Namespace)
		for _, res := range s.Results {
			if res.Namespace != s.Namespace {
				t.Errorf("%s in section %s", res.ID, s.Namespace)
			}
		}
		total.Passed += s.Summary.Passed
		total.Failed += s.Summary.Failed
		total.Skipped += s.Summary.Skipped
	}
	if got := strings.Join(names, ","); got != "ipc,mnt,pid,uts" {
		t.Errorf("sections %s", got)
	}
	if total != r.Summary {
		t.Errorf("section counts %+v, report %+v", total, r.Summary)
	}
}

func TestGridUnionOfProperties(t *testing.T) {
	a, b := rendertest.Load(t, "root"), rendertest.Load(t, "failing")
	b.Results = b.Results[:3] // b lacks some properties
	b.Results = append(b.Results, report.Result{ID: "zz.only-here", Namespace: "zz", State: report.Skipped})
	g := render.NewGrid([]*report.Report{a, b})
	if len(g.Columns) != 2 || g.Columns[0].Name != "ci-root" { // one kernel: the hosts name the columns
		t.Fatalf("columns %+v", g.Columns)
	}
	if len(g.Rows) != len(a.Results)+1 {
		t.Fatalf("%d rows, want %d", len(g.Rows), len(a.Results)+1)
	}
	last := g.Rows[len(g.Rows)-1]
	if last.ID != "zz.only-here" || last.Cells[0] != nil || last.Cells[1].State != report.Skipped {
		t.Errorf("row of a property only b has: %+v", last)
	}
	for _, row := range g.Rows[3 : len(g.Rows)-1] {
		if row.Cells[0] == nil || row.Cells[1] != nil {
			t.Errorf("%s: cells %v", row.ID, row.Cells)
		}
	}
	for i := 1; i < len(g.Rows); i++ {
		if g.Rows[i-1].ID >= g.Rows[i].ID {
			t.Errorf("rows not sorted: %s before %s", g.Rows[i-1].ID, g.Rows[i].ID)
		}
	}
}

func TestEvidenceAndDetail(t *testing.T) {
	r := rendertest.Broken()
	ev := render.Evidence(r.Results[0])
	var back map[string]any
	if err := json.Unmarshal([]byte(ev), &back); err != nil || back["leaks"] == nil {
		t.Errorf("evidence is not the JSON of the evidence: %v\n%s", err, ev)
	}
	if render.Evidence(r.Results[1]) != "" {
		t.Error("no evidence should render as empty")
	}
	if d := render.Detail(r.Results[1]); d != "control detected" {
		t.Errorf("detail of a pass: %q", d)
	}
	nc := report.Result{State: report.Passed, Control: "not-run", ControlReason: "EPERM check"}
	if d := render.Detail(nc); d != "control not-run: EPERM check" {
		t.Errorf("detail of a pass without control: %q", d)
	}
	if d := render.Detail(r.Results[0]); d != r.Results[0].Reason {
		t.Errorf("detail of a failure: %q", d)
	}
}
