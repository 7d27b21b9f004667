// Package mutants proves the catalog on kernels whose isolation is broken
// on purpose. The project keeps, in the top-level mutants/ directory, a
// kernel config fragment and a set of patches against Debian's
// linux-source-6.1, each injecting one realistic namespace isolation bug
// (sethostname writing the initial UTS namespace, a link dump that walks
// the initial network namespace ...). Beside each patch a small JSON file
// names the properties that must fail on that kernel as "isolation
// broken".
//
// This package loads that set (Load), builds the kernels with a cache
// keyed by source version, config and patch (Builder), and judges the
// report `nscheck vm` writes for each of them (Judge): the expected
// properties must fail as isolation broken, nothing else may fail, and the
// unmodified kernel must pass everything. An expected property the catalog
// does not have yet is reported as pending, never as caught. The test that
// drives it all (TestMutantKernels, run by `make mutants`) is gated by
// NSCHECK_MUTANTS=1 because a cold build takes minutes.
package mutants

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nscheck/nscheck/internal/report"
)

// Mutant is one injected isolation bug.
type Mutant struct {
	// Name is the file stem shared by the patch and its metadata
	// ("uts-sethostname-init-ns").
	Name string `json:"-"`
	// Patch is the path of the patch (-p1 against the kernel source).
	Patch string `json:"-"`
	// Summary says in one line what the patch breaks.
	Summary string `json:"summary"`
	// Namespace is the namespace type the bug is in ("uts").
	Namespace string `json:"namespace"`
	// Class is what the mutant stands for: "namespace" (one per type),
	// "path" (a leak only one path shows), "propagation" (mounts across
	// user namespaces) or "cve" (a reverted fix of a known kernel bug).
	Class string `json:"class"`
	// Expect are the properties that must fail as "isolation broken": a
	// property ID, or a label ("cve:CVE-2018-18955") that stands for every
	// property carrying it.
	Expect []string `json:"expect"`
	// Untrusted names the namespace types the harness itself relies on
	// that the bug breaks ("mnt", "pid"): properties the run marks
	// untrusted because of them are accepted instead of failing the test.
	Untrusted []string `json:"untrusted,omitempty"`
	// RunErrors are prefixes of run-level errors the bug itself causes and
	// the run rightly reports (the host guard seeing the SysV queues a
	// broken msgget created in the initial namespace): accepted, listed.
	RunErrors []string `json:"run_errors,omitempty"`
}

// Base is what the unmodified kernel may do besides pass: mutants/base.json.
type Base struct {
	// Skips are the properties allowed to skip on the base kernel, each
	// with why (the skip's cause is outside the kernel).
	Skips map[string]string `json:"skips"`
}

// Classes lists the mutant classes, in the order the score shows them.
var Classes = []string{"namespace", "path", "propagation", "cve"}

// Load reads the mutant set of dir: every <name>.json but base.json, each
// with its <name>.patch, ordered by class (Classes) and name.
func Load(dir string) ([]*Mutant, *Base, error) {
	metas, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("load mutants: %w", err)
	}
	base := &Base{}
	var ms []*Mutant
	for _, meta := range metas {
		name := strings.TrimSuffix(filepath.Base(meta), ".json")
		if name == "base" {
			if err := readJSON(meta, base); err != nil {
				return nil, nil, err
			}
			continue
		}
		m := &Mutant{Name: name, Patch: filepath.Join(dir, name+".patch")}
		if err := readJSON(meta, m); err != nil {
			return nil, nil, err
		}
		if err := m.validate(); err != nil {
			return nil, nil, fmt.Errorf("mutant %s: %w", name, err)
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, nil, fmt.Errorf("load mutants: no <name>.json in %s", dir)
	}
	// One per namespace type first, then the classes in their order.
	rank := func(m *Mutant) int {
		for i, c := range Classes {
			if c == m.Class {
				return i
			}
		}
		return len(Classes)
	}
	sort.Slice(ms, func(i, j int) bool {
		if ri, rj := rank(ms[i]), rank(ms[j]); ri != rj {
			return ri < rj
		}
		return ms[i].Name < ms[j].Name
	})
	return ms, base, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load mutants: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("load mutants: %s: %w", path, err)
	}
	return nil
}

func (m *Mutant) validate() error {
	if st, err := os.Stat(m.Patch); err != nil || st.Size() == 0 {
		return fmt.Errorf("no patch %s beside its metadata", m.Patch)
	}
	switch {
	case m.Summary == "":
		return fmt.Errorf("summary is empty")
	case m.Namespace == "":
		return fmt.Errorf("namespace is empty")
	case len(m.Expect) == 0:
		return fmt.Errorf("expect names no property")
	}
	known := false
	for _, c := range Classes {
		known = known || c == m.Class
	}
	if !known {
		return fmt.Errorf("class %q is none of %s", m.Class, strings.Join(Classes, ", "))
	}
	return nil
}

// Entry is a property of the catalog as `nscheck list --json` prints it.
type Entry struct {
	ID     string   `json:"id"`
	Labels []string `json:"labels"`
}

// Resolve turns expectations into catalog property IDs. An expectation
// that matches nothing in the catalog is pending.
func Resolve(expect []string, catalog []Entry) (ids, pending []string) {
	for _, e := range expect {
		var got []string
		for _, p := range catalog {
			if p.ID == e {
				got = append(got, p.ID)
				continue
			}
			for _, l := range p.Labels {
				if l == e {
					got = append(got, p.ID)
					break
				}
			}
		}
		if len(got) == 0 {
			pending = append(pending, e)
		}
		ids = append(ids, got...)
	}
	return ids, pending
}

// brokenPrefix starts the reason of a property whose check saw a leak
// (internal/runner); any other failure is the harness's.
const brokenPrefix = "isolation broken: "

// IsBroken reports whether a result is a failure as "isolation broken".
func IsBroken(r report.Result) bool {
	return r.State == report.Failed && strings.HasPrefix(r.Reason, brokenPrefix)
}

// IsUntrusted reports whether the run marked a result untrusted because a
// namespace type the harness relies on is broken.
func IsUntrusted(r report.Result) bool {
	return strings.Contains(strings.ToLower(r.Reason), "untrusted")
}

// Verdict is what one kernel's report says against its expectations.
type Verdict struct {
	// Caught are the expected properties that failed as isolation broken.
	Caught []string
	// Missed are expected properties that did not ("id: state: reason").
	Missed []string
	// Pending are expectations the catalog has no property for.
	Pending []string
	// Unexpected are other failures, harness errors among them, and
	// skips the base does not allow ("id: state: reason").
	Unexpected []string
	// Untrusted are other properties the run marked untrusted.
	Untrusted []string
	// Errors are the report's run-level errors (a guard, a failed boot).
	Errors []string
	// ExpectedErrors are run-level errors the mutant declares (RunErrors).
	ExpectedErrors []string
}

// OK reports whether the kernel behaved as expected: nothing missed,
// nothing unexpected, no run-level error. Pending expectations do not make
// it wrong, they make it unproven (see Score).
func (v *Verdict) OK() bool {
	return len(v.Missed) == 0 && len(v.Unexpected) == 0 && len(v.Errors) == 0
}

// Score is the verdict in one word: caught, missed, pending (nothing
// checkable yet) or wrong (it failed elsewhere too).
func (v *Verdict) Score() string {
	switch {
	case len(v.Missed) > 0:
		return "missed"
	case !v.OK():
		return "wrong"
	case len(v.Caught) > 0:
		return "caught"
	case len(v.Pending) > 0:
		return "pending"
	}
	return "passed"
}

// Judge compares a report with what its kernel should show: m is nil for
// the base kernel, which must pass everything but base's named skips.
func Judge(rep *report.Report, catalog []Entry, m *Mutant, base *Base) *Verdict {
	v := &Verdict{}
	for _, e := range rep.Errors {
		declared := false
		if m != nil {
			for _, p := range m.RunErrors {
				declared = declared || strings.HasPrefix(e, p)
			}
		}
		if declared {
			v.ExpectedErrors = append(v.ExpectedErrors, e)
		} else {
			v.Errors = append(v.Errors, e)
		}
	}
	want := map[string]bool{}
	untrustedOK := false
	if m != nil {
		var ids []string
		ids, v.Pending = Resolve(m.Expect, catalog)
		for _, id := range ids {
			want[id] = true
		}
		untrustedOK = len(m.Untrusted) > 0
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.ID] = true
		line := r.ID + ": " + r.State
		if r.Reason != "" {
			line += ": " + r.Reason
		}
		switch {
		case want[r.ID] && IsBroken(r):
			v.Caught = append(v.Caught, r.ID)
		case want[r.ID]:
			v.Missed = append(v.Missed, line)
		case r.State == report.Passed:
		case IsUntrusted(r) && untrustedOK:
			v.Untrusted = append(v.Untrusted, line)
		case r.State == report.Skipped && m == nil && base != nil && base.Skips[r.ID] != "":
		case r.State == report.Skipped && m != nil:
			// A mutant's skips are the base's: a kernel bug may turn a
			// premise off (an unprobeable feature), which is no failure.
		default:
			v.Unexpected = append(v.Unexpected, line)
		}
	}
	for id := range want {
		if !seen[id] {
			v.Missed = append(v.Missed, id+": not in the report")
		}
	}
	sort.Strings(v.Missed)
	return v
}

// Row is one kernel of the score table.
type Row struct {
	// Name is the mutant's name, or "base" for the unmodified kernel.
	Name    string
	Mutant  *Mutant
	Verdict *Verdict
	// Err is set when the kernel could not be built or booted.
	Err string
}

// ScoreTable renders the mutation score as Markdown: one line per kernel
// with what caught it, what it missed, what is pending and what else went
// wrong, and the score (caught mutants over the mutants with a checkable
// expectation) above it.
func ScoreTable(rows []Row) string {
	var b strings.Builder
	caught, judged, pending := 0, 0, 0
	for _, r := range rows {
		if r.Mutant == nil {
			continue
		}
		switch {
		case r.Err != "":
			judged++
		case r.Verdict.Score() == "pending":
			pending++
		case r.Verdict.Score() == "caught":
			caught++
			judged++
		default:
			judged++
		}
	}
	fmt.Fprintf(&b, "Mutation score: **%d/%d** mutants caught", caught, judged)
	if pending > 0 {
		fmt.Fprintf(&b, ", %d pending (their properties are not in the catalog yet)", pending)
	}
	b.WriteString(".\n\n")
	b.WriteString("| kernel | namespace | class | verdict | caught by | missed, pending, other failures |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ns, class := "", "unmodified"
		if r.Mutant != nil {
			ns, class = r.Mutant.Namespace, r.Mutant.Class
		}
		verdict, by := "error", ""
		var notes []string
		if r.Err != "" {
			notes = append(notes, r.Err)
		} else {
			v := r.Verdict
			verdict = v.Score()
			if r.Mutant == nil && v.OK() {
				verdict = "passed"
			}
			by = strings.Join(v.Caught, ", ")
			for _, m := range v.Missed {
				notes = append(notes, "missed "+m)
			}
			for _, p := range v.Pending {
				notes = append(notes, "pending: property "+p+" not in catalog")
			}
			for _, u := range v.Unexpected {
				notes = append(notes, "unexpected "+u)
			}
			if len(v.Untrusted) > 0 {
				notes = append(notes, fmt.Sprintf("%d untrusted", len(v.Untrusted)))
			}
			for _, e := range v.Errors {
				notes = append(notes, "run error: "+e)
			}
			if len(v.ExpectedErrors) > 0 {
				notes = append(notes, fmt.Sprintf("%d declared run errors (%s ...)", len(v.ExpectedErrors), v.ExpectedErrors[0]))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Name, ns, class, verdict, cell(by), cell(strings.Join(notes, "; ")))
	}
	return b.String()
}

// cell makes text safe for one Markdown table cell, and short.
func cell(s string) string {
	s = strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
	if len(s) > 600 {
		s = s[:600] + " …"
	}
	return s
}
