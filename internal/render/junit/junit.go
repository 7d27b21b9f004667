// Package junit renders an nscheck report as JUnit XML, as CI systems read
// it: one testsuite per namespace type, one testcase per property (named by
// its id), a failure or skipped element carrying the reason, the evidence
// as system-out.
//
// Like its siblings (html, markdown, prom) it is one format of the one
// table of outputs (cmd/nscheck/outputs.go), drawn from the report model
// of internal/report, which knows no format but its own JSON and text.
package junit

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"

	"github.com/nscheck/nscheck/internal/report"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

// Write writes the report as JUnit XML. Run errors become a failing
// testcase of a "run" suite, so CI sees them.
func Write(w io.Writer, r *report.Report) error {
	out := junitSuites{Name: "nscheck " + r.Name(), Time: seconds(r.DurationMS)}
	index := map[string]int{}
	add := func(suite string, c junitCase) {
		i, ok := index[suite]
		if !ok {
			i = len(out.Suites)
			index[suite] = i
			out.Suites = append(out.Suites, junitSuite{Name: suite})
		}
		s := &out.Suites[i]
		s.Tests++
		out.Tests++
		if c.Failure != nil {
			s.Failures++
			out.Failures++
		}
		if c.Skipped != nil {
			s.Skipped++
			out.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID, Classname: "nscheck." + res.Namespace, Time: seconds(res.DurationMS)}
		switch res.State {
		case report.Failed:
			c.Failure = &junitMessage{Message: res.Reason, Text: res.Reason}
		case report.Skipped:
			c.Skipped = &junitMessage{Message: res.Reason}
		}
		if ev, err := json.MarshalIndent(map[string]any{"evidence": res.Evidence, "control": res.Control, "control_reason": res.ControlReason}, "", "  "); err == nil {
			c.SystemOut = string(ev)
		}
		add(res.Namespace, c)
	}
	for i, e := range r.Errors {
		add("run", junitCase{Name: fmt.Sprintf("run-error-%d", i+1), Classname: "nscheck.run", Time: "0", Failure: &junitMessage{Message: e, Text: e}})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
