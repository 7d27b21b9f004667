package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/schematest"
)

func TestFixtureReportsValid(t *testing.T) {
	for _, path := range rendertest.Paths(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := schematest.Validate(data); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
}

// What the report package writes validates, also for the corners the
// fixtures lack (run errors, a failure with leaks, no evidence).
func TestWrittenReportValid(t *testing.T) {
	var b bytes.Buffer
	if err := report.WriteJSON(&b, rendertest.Broken()); err != nil {
		t.Fatal(err)
	}
	if err := schematest.Validate(b.Bytes()); err != nil {
		t.Error(err)
	}
}

// The schema must reject what is not a report: each case breaks one rule
// of a valid report.
func TestBrokenReportsRejected(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(rendertest.Dir(), "rootless.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(r map[string]any){
		"other schema":           func(r map[string]any) { r["schema"] = "nscheck/v2" },
		"no results":             func(r map[string]any) { delete(r, "results") },
		"results null":           func(r map[string]any) { r["results"] = nil },
		"unknown field":          func(r map[string]any) { r["verdict"] = "ok" },
		"bad started_at":         func(r map[string]any) { r["started_at"] = "yesterday" },
		"negative duration":      func(r map[string]any) { r["duration_ms"] = -1 },
		"bad mode":               func(r map[string]any) { r["privilege"].(map[string]any)["mode"] = "admin" },
		"bad kernel version":     func(r map[string]any) { r["kernel"].(map[string]any)["version"] = "6.1" },
		"bad state":              func(r map[string]any) { result(r, 0)["state"] = "great" },
		"bad control":            func(r map[string]any) { result(r, 0)["control"] = "maybe" },
		"skip without reason":    func(r map[string]any) { delete(result(r, 0), "reason") },
		"skip with empty reason": func(r map[string]any) { result(r, 0)["reason"] = "" },
		"missed control passed":  func(r map[string]any) { result(r, 2)["control"] = "missed" },
		"id without namespace":   func(r map[string]any) { result(r, 2)["id"] = "distinct-ns" },
		"leaks not strings":      func(r map[string]any) { result(r, 2)["evidence"].(map[string]any)["leaks"] = []any{1} },
		"summary count a string": func(r map[string]any) { r["summary"].(map[string]any)["passed"] = "4" },
		"errors not strings":     func(r map[string]any) { r["errors"] = []any{map[string]any{}} },
	}
	for name, breakIt := range cases {
		var r map[string]any
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		breakIt(r)
		broken, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		err = schematest.Validate(broken)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	if err := schematest.Validate([]byte(`{"schema": "nscheck/v1", `)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

// result is the i-th result of a decoded report (0 and 1 are skips in the
// rootless fixture, 2 a pass).
func result(r map[string]any, i int) map[string]any {
	return r["results"].([]any)[i].(map[string]any)
}
