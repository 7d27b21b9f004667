// Package zoo is the environment zoo: nscheck run in each of the places
// people actually run it (root with one capability less, nested user
// namespaces with a stale /proc or loopback down, rootless, under a seccomp
// filter, with a namespace type limited to zero, in Docker containers, in
// QEMU guests with a distro policy or without modules), and the invariant
// that must hold in every one of them on a correct kernel:
//
//   - no property fails as "isolation broken" (or with a control that
//     missed): the kernel is fine, so such a verdict is false;
//   - no harness error: a property that fails without evidence of a leak,
//     an error of the run, or a run that did not produce a report;
//   - every skip has a reason, and the reason names a cause;
//   - the properties `nscheck env` predicts to skip are the ones `nscheck
//     run` skips, with the same reasons once numbers and paths that differ
//     between two processes are normalised.
//
// This file holds the model (an environment, its outcome, the invariant)
// and its pure parts; envs.go lists the environments; table.go renders the
// table CI writes to bin/zoo/table.md and the README's "Tested
// environments" section. The zoo runs as a test (zoo_test.go) that needs
// root and NSCHECK_ZOO=1: `make zoo`, which `make test` runs last. It
// builds nscheck with `make build` (NSCHECK_ZOO_BIN names another static
// build instead), starts Docker with .ci/docker.sh and boots the 6.1
// kernel .ci/run caches; NSCHECK_ZOO_JOBS environments run at a time (3),
// and on a developer's machine NSCHECK_ZOO_ONLY (a regexp of names) and
// NSCHECK_ZOO_SKIP=docker,vm narrow it. Every environment has a deadline
// and runs in a process group of its own, killed at the deadline; what
// outlives its command is reported and killed.
package zoo

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/prop"
)

// Env is one environment of the zoo: how to run nscheck in it.
type Env struct {
	// Name identifies the environment in the table and as a subtest.
	Name string
	// Group is the part of the table it belongs to (caps, nested, ...).
	Group string
	// What says in words what the environment is.
	What string
	// Kind is how the environment is entered (see the Kind constants).
	Kind Kind
	// Prefix is the command line that enters the environment; nscheck and
	// its arguments follow it (KindExec, KindDocker). For KindDocker it is
	// the `docker run` options.
	Prefix []string
	// Env are extra environment variables for the process (KindExec).
	Env []string
	// Kernel, Append and Cgroup (nscheck vm --cgroup, "" for the default)
	// are the guest of a KindVM environment.
	Kernel, Append, Cgroup string
	// MayNotStart marks an environment this machine may be unable to
	// create at all (docker --privileged needs CAP_SYS_RESOURCE): its
	// failure to start is recorded, not a violation.
	MayNotStart bool
	// Note is a remark for the table (a known limit of this machine).
	Note string
	// Refusal, when set, is what the run must refuse with, once, at run
	// level: an environment in which nscheck cannot get a view it can
	// trust (a /proc of another PID namespace and no privilege to mount
	// its own). Such a run error names its cause and fix; it is the
	// expected outcome, not a harness error.
	Refusal string
}

// Kind is how an environment is entered.
type Kind int

const (
	// KindExec runs Prefix + nscheck + args on the host.
	KindExec Kind = iota
	// KindDocker runs docker run Prefix IMAGE args.
	KindDocker
	// KindVM runs nscheck vm with Kernel, Append and Cgroup; the guest takes the
	// diagnosis itself, after its run (it has no separate env command).
	KindVM
)

// Outcome is what one environment gave.
type Outcome struct {
	Env Env
	// NotStarted is why the environment could not be created (MayNotStart).
	NotStarted string
	// Run and Diag are the decoded report and diagnosis (nil when absent).
	Run  *report.Report
	Diag *Diagnosis
	// RunExit and EnvExit are the exit codes of nscheck run and env.
	RunExit, EnvExit int
	// Errors are the harness's and the run's own errors: a command that
	// did not run, produced no JSON, timed out, or the report's errors.
	Errors []string
	// Refused is the run error that matched Env.Refusal.
	Refused string
	// Stderr is the tail of nscheck's standard error, for the log.
	Stderr string
	// Seconds is how long the environment took.
	Seconds float64
}

// Diagnosis is the part of `nscheck env --json` the zoo reads.
type Diagnosis struct {
	Predictions []prop.Prediction `json:"predictions"`
}

// DecodeDiagnosis reads the JSON of `nscheck env --json`.
func DecodeDiagnosis(data []byte) (*Diagnosis, error) {
	var d Diagnosis
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode diagnosis: %w", err)
	}
	return &d, nil
}

// Counts are an outcome's results by verdict: Failed counts the false
// "isolation broken" verdicts (and controls that missed), Errors the
// harness errors (failed properties without a leak, and the run's own
// errors).
type Counts struct {
	Passed, Skipped, Failed, Errors int
}

// brokenPrefixes begin the reason of a failed property that is a verdict
// on the kernel rather than a harness error (internal/runner writes them).
var brokenPrefixes = []string{"isolation broken: ", "control missed: "}

// IsBroken reports whether a failed result is a verdict ("isolation
// broken", a control that missed) rather than a harness error.
func IsBroken(r report.Result) bool {
	if _, ok := r.Evidence["leaks"]; ok {
		return true
	}
	for _, p := range brokenPrefixes {
		if strings.HasPrefix(r.Reason, p) {
			return true
		}
	}
	return false
}

// Count tallies an outcome.
func (o *Outcome) Count() Counts {
	c := Counts{Errors: len(o.Errors)}
	if o.Run == nil {
		return c
	}
	for _, r := range o.Run.Results {
		switch {
		case r.State == report.Passed:
			c.Passed++
		case r.State == report.Skipped:
			c.Skipped++
		case IsBroken(r):
			c.Failed++
		default:
			c.Errors++
		}
	}
	return c
}

// Violations lists every way the outcome breaks the zoo's invariant, one
// line each; none means the environment is fine.
func (o *Outcome) Violations() []string {
	if o.NotStarted != "" && o.Env.MayNotStart {
		return nil
	}
	var v []string
	for _, e := range o.Errors {
		v = append(v, "harness error: "+e)
	}
	if o.Run == nil {
		return v
	}
	if o.Env.Refusal != "" && o.Refused == "" {
		v = append(v, fmt.Sprintf("the run did not refuse with %q", o.Env.Refusal))
	}
	for _, r := range o.Run.Results {
		switch {
		case r.State == report.Failed && IsBroken(r):
			v = append(v, fmt.Sprintf("%s: false verdict: %s", r.ID, r.Reason))
		case r.State == report.Failed:
			v = append(v, fmt.Sprintf("%s: harness error: %s", r.ID, r.Reason))
		case r.State == report.Skipped && !NamesCause(r.Reason):
			v = append(v, fmt.Sprintf("%s: skip reason names no cause: %q", r.ID, r.Reason))
		}
	}
	if o.Diag != nil {
		v = append(v, PredictionMismatches(o.Diag.Predictions, o.Run.Results)...)
	}
	return v
}

// NamesCause reports whether a skip reason says why. A reason that is empty,
// or is only a generic word with no cause after it ("skipped", "not
// supported", "EPERM"), does not; nscheck's reasons are sentences naming a
// capability, a knob, a file or a kernel feature.
func NamesCause(reason string) bool {
	r := strings.TrimSpace(reason)
	if len(strings.Fields(r)) < 3 {
		return false
	}
	low := strings.ToLower(r)
	for _, generic := range []string{"skipped", "not supported", "operation not permitted", "permission denied", "unknown"} {
		if strings.Trim(low, " .:") == generic {
			return false
		}
	}
	return true
}

var (
	normPath  = regexp.MustCompile(`/(tmp|proc|run|dev/shm)/[^\s:,;)'"]*`)
	normHex   = regexp.MustCompile(`\b(0x[0-9a-fA-F]+|[0-9a-f]{12,})\b`)
	normNum   = regexp.MustCompile(`[0-9]+`)
	normSpace = regexp.MustCompile(`\s+`)
)

// Normalize makes two reasons for the same cause from two processes
// compare equal: the paths of temporary files, /proc/<pid> and /run
// entries, hexadecimal IDs (a container's, in its cgroup path), numbers
// (pids, inodes, durations) and spacing are replaced.
func Normalize(reason string) string {
	s := normPath.ReplaceAllStringFunc(reason, func(p string) string {
		return "/" + strings.SplitN(p[1:], "/", 2)[0] + "/…"
	})
	s = normHex.ReplaceAllString(s, "#")
	s = normNum.ReplaceAllString(s, "#")
	return strings.TrimSpace(normSpace.ReplaceAllString(s, " "))
}

// PredictionMismatches compares the skips env predicted with the skips the
// run reported: the same property IDs, and the same reasons after
// Normalize. Each difference is one line.
func PredictionMismatches(pred []prop.Prediction, results []report.Result) []string {
	want := map[string]string{}
	for _, p := range pred {
		want[p.ID] = p.Skip
	}
	got := map[string]string{}
	for _, r := range results {
		if r.State == report.Skipped {
			got[r.ID] = r.Reason
		}
	}
	var out []string
	for _, id := range sortedKeys(want) {
		reason, ok := got[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: env predicted a skip (%s) but run did not skip it", id, want[id]))
		case Normalize(reason) != Normalize(want[id]):
			out = append(out, fmt.Sprintf("%s: env predicted the skip %q, run skipped with %q", id, want[id], reason))
		}
	}
	for _, id := range sortedKeys(got) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("%s: run skipped it (%s) but env did not predict it", id, got[id]))
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
