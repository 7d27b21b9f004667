package report

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func sample() *Report {
	r := &Report{
		Schema: Schema, Host: "node-1",
		Kernel:    Kernel{Release: "6.1.0-28-cloud-amd64", Version: "6.1.0", Machine: "x86_64"},
		Privilege: Privilege{EUID: 0, Mode: "root"},
		Results: []Result{
			{ID: "uts.hostname-local", Namespace: "uts", State: Passed, Control: "detected", Evidence: map[string]any{"inside": map[string]any{"hostname": "x"}}},
			{ID: "ipc.sysv-msgq-invisible", Namespace: "ipc", State: Failed, Reason: "isolation broken: key leaked", Control: "detected"},
			{ID: "user.unprivileged-create", Namespace: "user", State: Skipped, Reason: "needs root\nsecond line", Control: "not-run"},
		},
	}
	r.Sort()
	r.Tally()
	return r
}

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"6.1.0-28-cloud-amd64": "6.1.0", "6.18.44-fc-v782": "6.18.44", "5.6": "5.6.0", "junk": "", "": "",
		"6.1.": "6.1.0", "6.": "", "6.1.x": "6.1.0", "v6.1": "", "06.010.0200": "06.010.0200",
	} {
		if got := NormalizeVersion(in); got != want {
			t.Errorf("NormalizeVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// versionRE is what NormalizeVersion matched with before it was written by
// hand; both must agree on every input.
var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

func FuzzNormalizeVersion(f *testing.F) {
	for _, s := range []string{"6.1.0-28-cloud-amd64", "6.18.44-fc-v782", "5.6", "6.1.", "6.", "junk", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, release string) {
		want := ""
		if m := versionRE.FindStringSubmatch(release); m != nil {
			patch := m[3]
			if patch == "" {
				patch = "0"
			}
			want = m[1] + "." + m[2] + "." + patch
		}
		if got := NormalizeVersion(release); got != want {
			t.Fatalf("NormalizeVersion(%q) = %q, the regexp gives %q", release, got, want)
		}
	})
}

func TestTextReport(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample(), TextOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kernel 6.1.0-28-cloud-amd64 (x86_64), root (euid 0), host node-1",
		"FAIL  ipc.sysv-msgq-invisible   isolation broken: key leaked",
		"SKIP  user.unprivileged-create  needs root ...",
		"PASS  uts.hostname-local        control detected",
		"1 passed, 1 failed, 1 skipped in 0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	_ = WriteText(&b, sample(), TextOptions{Quiet: true, Color: true})
	if strings.Contains(b.String(), "uts.hostname-local") || !strings.Contains(b.String(), "\x1b[31mFAIL\x1b[0m") {
		t.Errorf("quiet/colour output wrong:\n%q", b.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary != (Summary{Passed: 1, Failed: 1, Skipped: 1}) || got.Name() != "node-1/6.1.0-28-cloud-amd64" {
		t.Errorf("round trip lost data: %+v", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       "\x00\x01binary",
		"no schema":      `{"results": []}`,
		"other schema":   `{"schema": "nscheck/v2"}`,
		"bad state":      `{"schema": "nscheck/v1", "results": [{"id": "a.b", "state": "great"}]}`,
		"no id":          `{"schema": "nscheck/v1", "results": [{"state": "passed"}]}`,
		"duplicate":      `{"schema": "nscheck/v1", "results": [{"id": "a", "state": "passed"}, {"id": "a", "state": "passed"}]}`,
		"wrong type":     `{"schema": "nscheck/v1", "results": {}}`,
		"truncated json": `{"schema": "nscheck/v1", "results": [`,
	} {
		if _, err := Decode(strings.NewReader(in)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: err = %v, want ErrSchema", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	_ = WriteJSON(&b, sample())
	f.Add(b.Bytes())
	f.Add([]byte(`{"schema":"nscheck/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		if r.Summary.Passed+r.Summary.Failed+r.Summary.Skipped != len(r.Results) {
			t.Fatalf("summary %+v disagrees with %d results", r.Summary, len(r.Results))
		}
	})
}
