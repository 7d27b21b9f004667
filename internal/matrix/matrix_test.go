package matrix

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/report"
)

func fixture(t *testing.T, name string) *report.Report {
	t.Helper()
	r, err := report.ReadFile(filepath.Join("..", "..", "fixtures", "reports", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func vmPair(t *testing.T) (*report.Report, *report.Report) {
	return fixture(t, "vm-6.1.0-57-cloud-amd64.json"), fixture(t, "vm-6.12.117-cloud-amd64.json")
}

// set changes one result of r (adding it if absent) and retallies.
func set(r *report.Report, id, state, reason string) {
	for i := range r.Results {
		if r.Results[i].ID == id {
			r.Results[i].State, r.Results[i].Reason = state, reason
			r.Tally()
			return
		}
	}
	r.Results = append(r.Results, report.Result{ID: id, State: state, Reason: reason})
	r.Sort()
	r.Tally()
}

func TestBuildVMReports(t *testing.T) {
	a, b := vmPair(t)
	m := Build([]*report.Report{a, b})
	if got := []string{m.Columns[0].Name, m.Columns[1].Name}; !reflect.DeepEqual(got, []string{"6.1.0-57-cloud-amd64", "6.12.117+deb12-cloud-amd64"}) {
		t.Errorf("columns %v", got)
	}
	if len(m.Rows) != len(a.Results) || len(m.Notes) != 0 {
		t.Fatalf("%d rows, %d notes", len(m.Rows), len(m.Notes))
	}
	for i, r := range m.Rows {
		if r.ID != a.Results[i].ID || r.Cells[0].State != report.Passed || r.Cells[1].State != report.Passed {
			t.Errorf("row %+v", r)
		}
	}
}

// The column names of every grid format (render.ColumnNames) name kernels
// for a kernel matrix, hosts for a fleet, both otherwise.
func TestColumnNames(t *testing.T) {
	a, b := vmPair(t)
	host := fixture(t, "run-host.json")
	other := fixture(t, "run-host.json")
	other.Host = "node-2"
	_, arm := vmPair(t)
	arm.Kernel.Machine, arm.Kernel.Release = "aarch64", "6.12.117+deb13-cloud-arm64"
	hybrid, legacy, legacy2 := *a, *a, *a
	hybrid.VM, legacy.VM, legacy2.VM = &report.VM{Cgroup: "v2+named"}, &report.VM{Cgroup: "v1"}, &report.VM{Cgroup: "v1"}
	for _, c := range []struct {
		reps []*report.Report
		want []string
	}{
		{[]*report.Report{host, other}, []string{host.Host, "node-2"}},                                                             // a fleet on one kernel
		{[]*report.Report{a, a}, []string{a.Kernel.Release, a.Kernel.Release + " #2"}},                                             // one kernel twice
		{[]*report.Report{host, a}, []string{host.Host + "/" + host.Kernel.Release, a.Kernel.Release}},                             // a host and a VM
		{[]*report.Report{a, b}, []string{a.Kernel.Release, b.Kernel.Release}},                                                     // a kernel matrix
		{[]*report.Report{a, arm}, []string{a.Kernel.Machine + "/" + a.Kernel.Release, "aarch64/" + arm.Kernel.Release}},           // arch x kernel
		{[]*report.Report{&hybrid, &legacy}, []string{a.Kernel.Release + " (cgroup v2+named)", a.Kernel.Release + " (cgroup v1)"}}, // one kernel, two layouts
		{[]*report.Report{&legacy, &legacy2}, []string{a.Kernel.Release, a.Kernel.Release + " #2"}},                                // one layout: not named
	} {
		if got := render.ColumnNames(c.reps); !reflect.DeepEqual(got, c.want) {
			t.Errorf("labels %q, want %q", got, c.want)
		}
		for i, col := range Build(c.reps).Columns {
			if col.Name != c.want[i] {
				t.Errorf("matrix column %d is %q, want %q", i, col.Name, c.want[i])
			}
		}
	}
}

// A grid with skips (one shared reason), a failure, a property only one
// report has, and a report whose kernel did not boot.
func mixed(t *testing.T) *Matrix {
	a, b := vmPair(t)
	set(a, "user.unprivileged-create", report.Skipped, "kernel.unprivileged_userns_clone=0 | set it to 1")
	set(b, "user.unprivileged-create", report.Skipped, "kernel.unprivileged_userns_clone=0 | set it to 1")
	set(b, "uts.hostname-local", report.Failed, "isolation broken: the host's hostname changed")
	dead := &report.Report{Schema: report.Schema, Kernel: report.Kernel{Release: "6.13.0-broken"}, VM: &report.VM{},
		Errors: []string{"boot: the kernel panicked: VFS: Unable to mount root fs"}}
	return Build([]*report.Report{a, b, dead})
}

func TestNotesAndAbsent(t *testing.T) {
	m := mixed(t)
	if len(m.Notes) != 2 || m.Notes[1] != "isolation broken: the host's hostname changed" {
		t.Fatalf("notes %q", m.Notes)
	}
	cells := map[string][]Cell{}
	for _, r := range m.Rows {
		cells[r.ID] = r.Cells
	}
	if got := cells["user.unprivileged-create"]; got[0] != (Cell{report.Skipped, 1}) || got[1] != got[0] || got[2].State != Absent {
		t.Errorf("user.unprivileged-create cells %+v", got)
	}
	if got := cells["uts.hostname-local"]; got[1] != (Cell{report.Failed, 2}) || got[0] != (Cell{State: report.Passed}) {
		t.Errorf("uts.hostname-local cells %+v", got)
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := mixed(t).WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	mustContain(t, b.String(),
		"property                  6.1.0-57-cloud-amd64  6.12.117+deb12-cloud-amd64  6.13.0-broken\n",
		"user.unprivileged-create  SKIP [1]              SKIP [1]                    -\n",
		"uts.hostname-local        PASS                  FAIL [2]                    -\n",
		"passed/failed/skipped     8/0/1                 7/1/1                       0/0/0\n",
		"[1] kernel.unprivileged_userns_clone=0 | set it to 1\n[2] isolation broken: the host's hostname changed\n",
		"error: 6.13.0-broken: boot: the kernel panicked: VFS: Unable to mount root fs\n",
	)
	b.Reset()
	mixed(t).WriteText(&b, true)
	if !strings.Contains(b.String(), "\x1b[33mSKIP\x1b[0m [1]") {
		t.Errorf("no coloured skip in:\n%s", b.String())
	}
}

// mustContain fails t for each of wants that out lacks.
func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	m := mixed(t)
	var b bytes.Buffer
	if err := m.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Schema string `json:"schema"`
		Matrix
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != "nscheck-matrix/v1" || !reflect.DeepEqual(back.Matrix, *m) {
		t.Errorf("JSON does not round-trip:\n%s", b.String())
	}
}
