package junit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
)

// write renders r and decodes it back: the output must be well-formed XML
// that keeps every reason, markup and newlines included.
func write(t *testing.T, r *report.Report) (string, junitSuites) {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r); err != nil {
		t.Fatal(err)
	}
	var back junitSuites
	if err := xml.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	return b.String(), back
}

// cases indexes the testcases by suite and name.
func cases(s junitSuites) map[string]junitCase {
	out := map[string]junitCase{}
	for _, suite := range s.Suites {
		for _, c := range suite.Cases {
			out[suite.Name+"/"+c.Name] = c
		}
	}
	return out
}

func TestFailureAndRunError(t *testing.T) {
	r := rendertest.Broken()
	out, back := write(t, r)
	if !strings.HasPrefix(out, xml.Header) {
		t.Errorf("no XML header:\n%s", out)
	}
	if back.Name != "nscheck "+r.Name() || back.Tests != 3 || back.Failures != 2 || back.Skipped != 0 {
		t.Errorf("testsuites %q tests %d failures %d skipped %d, want %q 3 2 0", back.Name, back.Tests, back.Failures, back.Skipped, "nscheck "+r.Name())
	}
	cs := cases(back)
	broken := cs["uts/uts.hostname-local"]
	if broken.Classname != "nscheck.uts" || broken.Failure == nil || broken.Failure.Message != r.Results[0].Reason {
		t.Errorf("failed case %+v, want the reason %q", broken, r.Results[0].Reason)
	}
	if !strings.Contains(broken.SystemOut, `"hostname.while-held": "x|y `+"```"+` \u003cb\u003e"`) {
		t.Errorf("evidence missing from system-out: %q", broken.SystemOut)
	}
	if ok := cs["uts/uts.distinct-ns"]; ok.Failure != nil || ok.Skipped != nil {
		t.Errorf("passed case %+v has a failure or skip", ok)
	}
	if run := cs["run/run-error-1"]; run.Failure == nil || run.Failure.Message != r.Errors[0] {
		t.Errorf("run error case %+v, want a failure %q", run, r.Errors[0])
	}
}

func TestSkipped(t *testing.T) {
	r := rendertest.Load(t, "rootless")
	_, back := write(t, r)
	if back.Tests != len(r.Results) || back.Skipped != r.Summary.Skipped || back.Failures != r.Summary.Failed {
		t.Errorf("tests %d skipped %d failures %d, want %d %d %d", back.Tests, back.Skipped, back.Failures, len(r.Results), r.Summary.Skipped, r.Summary.Failed)
	}
	cs := cases(back)
	for _, res := range r.Results {
		c, ok := cs[res.Namespace+"/"+res.ID]
		switch {
		case !ok:
			t.Errorf("no testcase for %s", res.ID)
		case res.State == report.Skipped && (c.Skipped == nil || c.Skipped.Message != res.Reason):
			t.Errorf("%s: skipped %+v, want the reason %q", res.ID, c.Skipped, res.Reason)
		case res.State == report.Passed && (c.Skipped != nil || c.Failure != nil):
			t.Errorf("%s passed, yet %+v", res.ID, c)
		}
	}
}
