package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// TextOptions shape the text report.
type TextOptions struct {
	// Color wraps verdicts in ANSI colours (a terminal without NO_COLOR).
	Color bool
	// Verbose prints the evidence of every property.
	Verbose bool
	// Quiet prints only failures, errors and the summary.
	Quiet bool
}

const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

var verdictWord = map[string]string{Passed: "PASS", Failed: "FAIL", Skipped: "SKIP"}
var verdictColor = map[string]string{Passed: ansiGreen, Failed: ansiRed, Skipped: ansiYellow}

// Verdict renders a state as a fixed-width word, coloured if asked.
func Verdict(state string, color bool) string {
	w := verdictWord[state]
	if w == "" {
		w = strings.ToUpper(state)
	}
	if color {
		return verdictColor[state] + w + ansiReset
	}
	return w
}

// WriteText writes the report for people: a header, one line per property
// (verdict, id, reason or control verdict), run errors, and the summary line
// "N passed, N failed, N skipped" with how many properties were verified.
func WriteText(w io.Writer, r *Report, o TextOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nscheck: kernel %s (%s), %s (euid %d)", r.Kernel.Release, r.Kernel.Machine, r.Privilege.Mode, r.Privilege.EUID)
	if r.Host != "" {
		fmt.Fprintf(&b, ", host %s", r.Host)
	}
	b.WriteString("\n")
	width := 0
	for _, res := range r.Results {
		width = max(width, len(res.ID))
	}
	for _, res := range r.Results {
		if o.Quiet && res.State != Failed {
			continue
		}
		detail := res.Reason
		if res.State == Passed {
			detail = "control " + res.Control
		}
		fmt.Fprintf(&b, "%s  %-*s  %s\n", Verdict(res.State, o.Color), width, res.ID, oneLine(detail))
		if o.Verbose {
			writeEvidence(&b, res.Evidence)
		}
	}
	for _, u := range r.Untrusted {
		fmt.Fprintf(&b, "%s  %s\n", Verdict(Skipped, o.Color), UntrustedLine(u))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "%s  %s\n", Verdict(Failed, o.Color), "run error: "+oneLine(e))
	}
	b.WriteString(SummaryLine(r) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SummaryLine is "N passed, N failed, N skipped in 0.42s: N of M properties
// verified".
func SummaryLine(r *Report) string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped in %s: %s",
		r.Summary.Passed, r.Summary.Failed, r.Summary.Skipped,
		(time.Duration(r.DurationMS) * time.Millisecond).String(), r.Verified())
}

// UntrustedLine says once what a broken namespace type the harness relies
// on did to the run: "untrusted: the kernel did not create a new mount
// namespace: 41 properties could not be verified (ipc.x, ...)".
func UntrustedLine(u Untrusted) string {
	ids := u.Properties
	more := ""
	if len(ids) > 5 {
		ids, more = ids[:5], fmt.Sprintf(" and %d more", len(u.Properties)-5)
	}
	return fmt.Sprintf("untrusted: %s, which nscheck itself needs: %d properties could not be verified (%s%s)",
		u.Cause, len(u.Properties), strings.Join(ids, ", "), more)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

func writeEvidence(b *strings.Builder, ev map[string]any) {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := json.Marshal(ev[k])
		if err != nil {
			v = []byte(fmt.Sprint(ev[k]))
		}
		fmt.Fprintf(b, "        %s: %s\n", k, v)
	}
}
