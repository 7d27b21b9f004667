// Package rendertest gives the renderers' tests the fixture reports of
// fixtures/reports: real reports written by `nscheck run` (see the README
// there for how each was made). For tests only.
package rendertest

import (
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/report"
)

// Dir is the absolute path of fixtures/reports.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "fixtures", "reports")
}

// Paths lists the fixture reports, sorted.
func Paths(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(Dir(), "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixture reports in %s (%v)", Dir(), err)
	}
	sort.Strings(paths)
	return paths
}

// Load decodes the fixture report named name ("root", "rootless",
// "failing").
func Load(t testing.TB, name string) *report.Report {
	t.Helper()
	r, err := report.ReadFile(filepath.Join(Dir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// All decodes root, rootless and failing, in that order.
func All(t testing.TB) []*report.Report {
	t.Helper()
	return []*report.Report{Load(t, "root"), Load(t, "rootless"), Load(t, "failing")}
}

// Broken is a report with an isolation failure whose evidence and reason
// hold characters every format must escape: HTML and Markdown markup,
// pipes, backticks, quotes, backslashes and newlines.
func Broken() *report.Report {
	r := &report.Report{
		Schema: report.Schema, Host: `node "7" <a>|b`,
		Kernel:    report.Kernel{Release: "6.1.0-28-cloud-amd64", Version: "6.1.0", Machine: "x86_64"},
		Privilege: report.Privilege{EUID: 0, Mode: "root"},
		Results: []report.Result{{
			ID: "uts.hostname-local", Namespace: "uts", Title: "sethostname <inside> | only",
			State:  report.Failed,
			Reason: "isolation broken: the host's hostname changed to \"x|y\" <script>alert(1)</script>\nsecond line \\ ```",
			Evidence: map[string]any{
				"host":  map[string]any{"hostname.while-held": "x|y ``` <b>"},
				"leaks": []string{"hostname changed"},
			},
			Control: "detected",
		}, {
			ID: "uts.distinct-ns", Namespace: "uts", State: report.Passed, Control: "detected",
		}},
		Errors: []string{"host changed during the run: mount <x> added"},
	}
	r.Tally()
	return r
}

// Contains reports (as test errors) each of wants that text lacks; what
// names the text in the message.
func Contains(t testing.TB, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}
