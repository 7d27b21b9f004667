// Package runner runs the registered property specs in-process with Ginkgo
// (what `nscheck run` does) and turns Ginkgo's spec reports into the
// nscheck/v1 report. The specs are the very ones `go test ./suites/...`
// runs: they are registered by the suite packages linked into the binary.
package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/nscheck/nscheck/internal/diag"
	"github.com/nscheck/nscheck/internal/hostsnap"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/prop"
	"github.com/nscheck/nscheck/specs"
)

// Options select and shape a run.
type Options struct {
	// LabelFilter is a Ginkgo label filter (labels: prop:<id>, ns:<type>,
	// needs:root|userns).
	LabelFilter string
	// Focus keeps only specs whose text (id and title) matches one of these.
	Focus []string
	// Timeout bounds the whole run (0: Ginkgo's default of an hour).
	Timeout time.Duration
	// GinkgoOutput shows Ginkgo's own console reporter (for debugging).
	GinkgoOutput bool
	// OnResult is called as each property finishes (progress output).
	OnResult func(report.Result)
	// NoGuard turns off the host invariance guard (on by default): a
	// snapshot of the host before and after the run that must match.
	NoGuard bool
	// Procs is how many properties are evaluated at once (below 2: one
	// after another).
	Procs int
}

// Validate checks the filters without running anything, so that bad input
// is a usage error before any spec starts.
func (o Options) Validate() error {
	if o.LabelFilter != "" {
		if _, err := types.ParseLabelFilter(o.LabelFilter); err != nil {
			return fmt.Errorf("--label-filter %q: %s", o.LabelFilter, firstLine(err.Error()))
		}
	}
	for _, f := range o.Focus {
		if _, err := regexp.Compile(f); err != nil {
			return fmt.Errorf("--focus %q: %w", f, err)
		}
	}
	return nil
}

var (
	collectMu   sync.Mutex
	suiteReport ginkgo.Report
	onResult    func(report.Result)
)

// The hooks that see every spec as it ends (progress) and the whole suite
// (the report); registered at package level because Ginkgo builds its tree
// before RunSpecs.
var (
	_ = ginkgo.ReportAfterEach(func(sr ginkgo.SpecReport) {
		collectMu.Lock()
		cb := onResult
		collectMu.Unlock()
		if res, ok := resultOf(sr); ok && cb != nil {
			cb(res)
		}
	})
	_ = ginkgo.ReportAfterSuite("nscheck report", func(r ginkgo.Report) {
		collectMu.Lock()
		suiteReport = r
		collectMu.Unlock()
	})
)

// Run runs the specs once (Ginkgo allows one run per process) and returns
// the report. Run errors (Ginkgo's own, not a property's) are in
// report.Errors.
func Run(o Options) (*report.Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	// The host guard's failures are the run's errors, in the report: a
	// report is always written, and one whose guard could not look at the
	// host says so rather than none.
	var runErrs []string
	var before hostsnap.Snapshot
	if !o.NoGuard {
		var err error
		if before, err = hostsnap.Take(); err != nil {
			runErrs = append(runErrs, "host guard: before the run: "+err.Error()+"; the host was not compared after it")
			before = nil
		}
	}
	collectMu.Lock()
	suiteReport, onResult = ginkgo.Report{}, o.OnResult
	collectMu.Unlock()

	suiteCfg, repCfg := ginkgo.GinkgoConfiguration()
	suiteCfg.LabelFilter = o.LabelFilter
	suiteCfg.FocusStrings = o.Focus
	suiteCfg.RandomizeAllSpecs = false
	suiteCfg.RandomSeed = 1 // a stable order from run to run
	if o.Timeout > 0 {
		suiteCfg.Timeout = o.Timeout
	}
	repCfg.NoColor = true
	if !o.GinkgoOutput {
		formatter.ColorableStdOut = io.Discard
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	specs.Define()
	sel, err := Selected(o)
	if err != nil {
		return nil, err
	}
	stopAhead := specs.Concurrent(sel, o.Procs)
	t := &failT{}
	ginkgo.RunSpecs(t, "nscheck", suiteCfg, repCfg)
	stopAhead()

	collectMu.Lock()
	sr := suiteReport
	collectMu.Unlock()
	results := []report.Result{} // [] not null in JSON when none ran
	for _, spec := range sr.SpecReports {
		if res, ok := resultOf(spec); ok {
			results = append(results, res)
		}
	}
	rep := &report.Report{
		Schema:    report.Schema,
		Kernel:    report.ThisKernel(),
		Privilege: ThisPrivilege(),
		StartedAt: started.UTC().Truncate(time.Millisecond),
		Results:   results,
		Errors:    runErrs,
	}
	if h, err := os.Hostname(); err == nil {
		rep.Host = h
	}
	// The diagnosis of the environment. Its live probes (a helper per
	// namespace type, as root and unprivileged) only run when something was
	// skipped: on a healthy machine the properties themselves have just
	// created every namespace type.
	probe := slices.ContainsFunc(results, func(r report.Result) bool { return r.State == report.Skipped })
	env, envErr := diag.Diagnose(context.Background(), diag.Options{NoProbe: !probe})
	if envErr != nil {
		rep.Errors = append(rep.Errors, "environment diagnosis: "+envErr.Error())
	} else {
		rep.Environment = env.JSON()
	}
	if before != nil {
		if after, err := hostsnap.Take(); err != nil {
			rep.Errors = append(rep.Errors, "host guard: after the run: "+err.Error()+" (the host may have been changed)")
		} else {
			for _, d := range hostsnap.Diff(before, after) {
				rep.Errors = append(rep.Errors, "host changed during the run: "+d)
			}
			if len(after[hostsnap.HelpersKey]) > 0 {
				_, _ = hostsnap.HelpersLeft(true) // reported above; not left behind
			}
		}
	}
	for _, why := range sr.SpecialSuiteFailureReasons {
		rep.Errors = append(rep.Errors, "the run was stopped early ("+firstLine(why)+"); the report is partial")
	}
	if len(sr.SpecialSuiteFailureReasons) > 0 {
		rep.Results = append(rep.Results, notRun(o, rep.Results)...)
	}
	rep.Sort()
	rep.Tally()
	rep.DurationMS = time.Since(started).Milliseconds()
	return rep, nil
}

// ThisPrivilege says whether this process runs as root (CAP_SYS_ADMIN in
// the initial user namespace) or rootless.
func ThisPrivilege() report.Privilege {
	mode := "rootless"
	if prop.IsRoot() {
		mode = "root"
	}
	return report.Privilege{EUID: os.Geteuid(), Mode: mode}
}

// failT is the GinkgoTestingT of an in-process run: the verdicts are read
// from the spec reports, so Fail has nothing to record.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

// resultOf converts a spec report; ok is false for specs that the filters
// left out and for specs that are not properties.
func resultOf(sr ginkgo.SpecReport) (report.Result, bool) {
	id := ""
	for _, l := range sr.Labels() {
		if v, ok := strings.CutPrefix(l, "prop:"); ok {
			id = v
		}
	}
	if id == "" {
		return report.Result{}, false
	}
	if sr.State == types.SpecStateSkipped && sr.Failure.Message == "" {
		return report.Result{}, false // filtered out, never started
	}
	res := report.Result{
		ID:         id,
		Namespace:  strings.SplitN(id, ".", 2)[0],
		DurationMS: sr.RunTime.Milliseconds(),
		Evidence:   map[string]any{},
		Control:    prop.ControlNotRun,
	}
	if p, ok := prop.Lookup(id); ok {
		res.Title = p.Title
	}
	var out prop.Outcome
	for _, e := range sr.ReportEntries {
		if o, ok := e.GetRawValue().(prop.Outcome); ok && e.Name == prop.OutcomeEntry {
			out = o
			applyOutcome(&res, out)
		}
	}
	switch {
	case sr.State == types.SpecStatePassed:
		res.State = report.Passed
	case sr.State == types.SpecStateSkipped && sr.Failure.FailureNodeType == types.NodeTypeInvalid && strings.HasPrefix(sr.Failure.Message, "Interrupted"):
		res.State = report.Skipped
		res.Reason = "not run: the run was stopped before this property (" + firstLine(sr.Failure.Message) + ")"
	case sr.State == types.SpecStateSkipped:
		res.State = report.Skipped
		res.Reason = strings.TrimSpace(sr.Failure.Message)
	default:
		res.State = report.Failed
		res.Reason = failureReason(sr, out)
	}
	return res, true
}

func applyOutcome(res *report.Result, out prop.Outcome) {
	for side, facts := range out.Evidence {
		res.Evidence[side] = facts
	}
	if len(out.Leaks) > 0 {
		res.Evidence["leaks"] = out.Leaks
	}
	if out.ControlEvidence != nil {
		res.Evidence["control"] = out.ControlEvidence
	}
	res.Control = out.Control
	res.ControlReason = out.ControlReason
	res.Untrusted = out.Untrusted
	if out.ElapsedMS > 0 {
		// The evaluation's own cost: with --procs > 1 the spec may only
		// have waited for an evaluation that ran ahead of it.
		res.DurationMS = out.ElapsedMS
	}
}

// failureReason says why a property failed in one line: the leaks the check
// saw, a control that missed, or what Ginkgo reported.
func failureReason(sr ginkgo.SpecReport, out prop.Outcome) string {
	if sr.State == types.SpecStateFailed {
		switch {
		case len(out.Leaks) > 0:
			return "isolation broken: " + strings.Join(out.Leaks, "; ")
		case out.Control == prop.ControlMissed:
			return "control missed: the check cannot fail (" + out.ControlReason + ")"
		}
	}
	msg := firstLine(sr.Failure.Message)
	switch sr.State {
	case types.SpecStateTimedout:
		return "timed out: " + msg
	case types.SpecStateInterrupted:
		return "interrupted while running (" + msg + "): its helpers were killed"
	case types.SpecStatePanicked:
		return fmt.Sprintf("panic: %s %v", msg, sr.Failure.ForwardedPanic)
	case types.SpecStateAborted:
		return "aborted: " + msg
	}
	if msg == "" {
		msg = sr.State.String()
	}
	return msg
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// firstLine is the first line of s, without terminal colour codes.
func firstLine(s string) string {
	s = strings.TrimSpace(ansiRE.ReplaceAllString(s, ""))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Selected lists the properties that the options' filters select.
func Selected(o Options) ([]*prop.Property, error) {
	match := func([]string) bool { return true }
	if o.LabelFilter != "" {
		lf, err := types.ParseLabelFilter(o.LabelFilter)
		if err != nil {
			return nil, fmt.Errorf("--label-filter: %s", firstLine(err.Error()))
		}
		match = lf
	}
	var focus []*regexp.Regexp
	for _, f := range o.Focus {
		re, err := regexp.Compile(f)
		if err != nil {
			return nil, fmt.Errorf("--focus %q: %w", f, err)
		}
		focus = append(focus, re)
	}
	var out []*prop.Property
	for _, p := range prop.All() {
		if !match(p.Labels()) {
			continue
		}
		text := prop.SpecText(p)
		if len(focus) > 0 && !slices.ContainsFunc(focus, func(re *regexp.Regexp) bool { return re.MatchString(text) }) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// notRun lists, as skipped, the selected properties that a stopped run
// never reached.
func notRun(o Options, done []report.Result) []report.Result {
	sel, err := Selected(o)
	if err != nil {
		return nil
	}
	var out []report.Result
	for _, p := range sel {
		if slices.ContainsFunc(done, func(r report.Result) bool { return r.ID == p.ID }) {
			continue
		}
		out = append(out, report.Result{
			ID: p.ID, Namespace: p.Namespace(), Title: p.Title, State: report.Skipped,
			Reason:   "not run: the run was stopped before this property",
			Evidence: map[string]any{}, Control: prop.ControlNotRun,
		})
	}
	return out
}
