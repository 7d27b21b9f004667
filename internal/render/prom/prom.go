// Package prom renders an nscheck report in the Prometheus text exposition
// format (version 0.0.4), for node_exporter's textfile collector: write it
// to <dir>/nscheck.prom (atomically: the collector may read at any time)
// and every scrape of the node carries the node's isolation verdicts.
//
// The text is written here rather than through client_golang: it is a
// handful of gauges, and the format is small and stable. The tests parse
// it with Prometheus' own parser.
//
// Metrics (all gauges; no timestamps, which the textfile collector rejects):
//
//	nscheck_property_passed{id,namespace}   1 passed, 0 failed or skipped
//	nscheck_property_skipped{id,namespace}  1 skipped, else 0
//	nscheck_properties{state}               how many properties are in each state
//	nscheck_run_errors                      failures of the run itself
//	nscheck_run_duration_seconds            how long the run took
//	nscheck_last_run_timestamp_seconds      when the run ended (Unix time)
//	nscheck_info{host,kernel_release,kernel_version,machine,mode}  1
//
// A failed property is passed == 0 and skipped == 0: a skip is never a pass,
// and neither is it a failure, so alerting on failures is
// `nscheck_property_passed == 0 unless nscheck_property_skipped == 1`.
package prom

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/report"
)

// ContentType is the media type of what Write produces.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write writes r's metrics.
func Write(w io.Writer, r *report.Report) error {
	var b strings.Builder
	e := &emitter{b: &b}

	e.family("nscheck_property_passed", "1 if the isolation property held (and its control detected the leak), 0 if it failed or was skipped.")
	for _, s := range render.Sections(r) {
		for _, res := range s.Results {
			e.sample(propLabels(res), b2f(res.State == report.Passed))
		}
	}
	e.family("nscheck_property_skipped", "1 if the environment could not run the property (see the report for the reason), else 0.")
	for _, s := range render.Sections(r) {
		for _, res := range s.Results {
			e.sample(propLabels(res), b2f(res.State == report.Skipped))
		}
	}
	e.family("nscheck_properties", "Number of properties in each state in the last run.")
	for _, st := range []struct {
		name string
		n    int
	}{{report.Failed, r.Summary.Failed}, {report.Passed, r.Summary.Passed}, {report.Skipped, r.Summary.Skipped}} {
		e.sample([]label{{"state", st.name}}, float64(st.n))
	}
	e.family("nscheck_run_errors", "Failures of the run itself (host changed, harness error), not of a property.")
	e.sample(nil, float64(len(r.Errors)))
	e.family("nscheck_run_duration_seconds", "How long the last run took.")
	e.sample(nil, float64(r.DurationMS)/1000)
	e.family("nscheck_last_run_timestamp_seconds", "When the last run ended, in seconds since the Unix epoch.")
	end := r.StartedAt.Add(time.Duration(r.DurationMS) * time.Millisecond)
	e.sample(nil, float64(end.UnixMilli())/1000)
	e.family("nscheck_info", "The kernel and privilege of the last run; always 1.")
	e.sample([]label{
		{"host", r.Host}, {"kernel_release", r.Kernel.Release}, {"kernel_version", r.Kernel.Version},
		{"machine", r.Kernel.Machine}, {"mode", r.Privilege.Mode},
	}, 1)

	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

type label struct{ name, value string }

func propLabels(res report.Result) []label {
	return []label{{"id", res.ID}, {"namespace", res.Namespace}}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// emitter writes metric families; every family is a gauge.
type emitter struct {
	b    *strings.Builder
	name string
}

func (e *emitter) family(name, help string) {
	e.name = name
	fmt.Fprintf(e.b, "# HELP %s %s\n# TYPE %s gauge\n", name, escapeHelp(help), name)
}

func (e *emitter) sample(labels []label, v float64) {
	e.b.WriteString(e.name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				e.b.WriteByte(',')
			}
			fmt.Fprintf(e.b, "%s=\"%s\"", l.name, escapeLabel(l.value))
		}
		e.b.WriteByte('}')
	}
	e.b.WriteByte(' ')
	e.b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	e.b.WriteByte('\n')
}

// In HELP text, backslash and newline are escaped; in label values also the
// double quote (the exposition format's only escapes).
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// The format is UTF-8: invalid bytes (from a report written elsewhere)
// become U+FFFD rather than make the whole file unreadable.
func escapeHelp(s string) string  { return helpEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }
func escapeLabel(s string) string { return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }
