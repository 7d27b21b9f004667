package prom

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
)

// parse parses text with Prometheus' own text-format parser.
func parse(t testing.TB, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("not valid exposition text: %v\n%s", err, text)
	}
	return fams
}

func write(t testing.TB, r *report.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// values maps the value of label key to the sample value, for one family.
func values(f *dto.MetricFamily, key string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		out[labels(m)[key]] = m.GetGauge().GetValue()
	}
	return out
}

func TestParsesAndCounts(t *testing.T) {
	r := rendertest.Load(t, "rootless")
	fams := parse(t, write(t, r))
	want := []string{
		"nscheck_property_passed", "nscheck_property_skipped", "nscheck_properties", "nscheck_run_errors",
		"nscheck_run_duration_seconds", "nscheck_last_run_timestamp_seconds", "nscheck_info",
	}
	if len(fams) != len(want) {
		t.Errorf("%d families, want %d", len(fams), len(want))
	}
	for _, name := range want {
		f := fams[name]
		if f == nil {
			t.Errorf("no family %s", name)
			continue
		}
		if f.GetType() != dto.MetricType_GAUGE || f.GetHelp() == "" {
			t.Errorf("%s: type %v help %q", name, f.GetType(), f.GetHelp())
		}
		for _, m := range f.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp (the textfile collector rejects them)", name)
			}
		}
	}
	passed := values(fams["nscheck_property_passed"], "id")
	skipped := values(fams["nscheck_property_skipped"], "id")
	if len(passed) != len(r.Results) || len(skipped) != len(r.Results) {
		t.Fatalf("%d/%d property samples for %d results", len(passed), len(skipped), len(r.Results))
	}
	for _, res := range r.Results {
		p, s := passed[res.ID], skipped[res.ID]
		if (p == 1) != (res.State == report.Passed) || (s == 1) != (res.State == report.Skipped) {
			t.Errorf("%s (%s): passed %v skipped %v", res.ID, res.State, p, s)
		}
	}
	for _, m := range fams["nscheck_property_passed"].GetMetric() {
		l := labels(m)
		if !strings.HasPrefix(l["id"], l["namespace"]+".") {
			t.Errorf("labels %v", l)
		}
	}
	states := values(fams["nscheck_properties"], "state")
	if states["passed"] != 4 || states["failed"] != 0 || states["skipped"] != 4 || len(states) != 3 {
		t.Errorf("nscheck_properties %v", states)
	}
	ts := fams["nscheck_last_run_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue()
	end := r.StartedAt.Add(time.Duration(r.DurationMS) * time.Millisecond)
	if math.Abs(ts-float64(end.UnixMilli())/1000) > 0.001 {
		t.Errorf("timestamp %v, want the run's end %v", ts, end)
	}
	info := labels(fams["nscheck_info"].GetMetric()[0])
	if info["host"] != "ci-rootless" || info["mode"] != "rootless" || info["kernel_version"] != "6.18.44" {
		t.Errorf("nscheck_info %v", info)
	}
}

// promtool's rules: HELP and TYPE once per family and before its samples,
// families not interleaved, label values escaped (the parser gives them
// back verbatim).
func TestFormatRules(t *testing.T) {
	r := rendertest.Broken()
	text := write(t, r)
	fams := parse(t, text)
	if got := labels(fams["nscheck_info"].GetMetric()[0])["host"]; got != r.Host {
		t.Errorf("host label %q, want %q", got, r.Host)
	}
	if fams["nscheck_run_errors"].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Error("run errors not counted")
	}
	seen := map[string]bool{}
	current := ""
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name := strings.Fields(line)[2]
			if seen[name] {
				t.Errorf("family %s appears twice", name)
			}
			seen[name], current = true, name
		case strings.HasPrefix(line, "# TYPE "):
			if f := strings.Fields(line); f[2] != current || f[3] != "gauge" {
				t.Errorf("TYPE line %q not right after HELP of %s", line, current)
			}
		default:
			if name := strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]; name != current {
				t.Errorf("sample %q outside its family %s", line, current)
			}
		}
	}
}

func FuzzWrite(f *testing.F) {
	f.Add("node-1", "uts.hostname-local", "6.1.0")
	f.Add(`a"b\c`+"\nd", "x.y", "")
	f.Fuzz(func(t *testing.T, host, id, release string) {
		r := &report.Report{Schema: report.Schema, Host: host, Kernel: report.Kernel{Release: release},
			Results: []report.Result{{ID: id, Namespace: "ns", State: report.Passed}}}
		r.Tally()
		fams := parse(t, write(t, r))
		// Label values are UTF-8; invalid bytes become U+FFFD.
		if got, want := labels(fams["nscheck_info"].GetMetric()[0])["host"], strings.ToValidUTF8(host, "\uFFFD"); got != want {
			t.Errorf("host %q came back as %q", want, got)
		}
		if got := values(fams["nscheck_property_passed"], "id"); got[strings.ToValidUTF8(id, "\uFFFD")] != 1 {
			t.Errorf("id %q did not round-trip: %v", id, got)
		}
	})
}
