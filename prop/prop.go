// Package prop is nscheck's property model, public so that other Go
// modules (a container runtime's or a distribution's test suite) can run the
// catalog and add properties of their own: an isolation property is a check
// with a negative control and premises, registered by ID.
//
// A property's Check is written once, as plain Go that spawns helpers
// ([Trial.Start], [Trial.Run]) and compares what they saw with what the
// observer sees, recording each broken expectation as a leak
// ([Trial.Expect]). It runs twice:
//
//   - for real, observed from this process (the host), with every namespace
//     the check asks for: it must find no leak;
//   - as the negative control, inside a disposable sandbox (a helper with its
//     own mount, PID and tested namespace, playing the host) and with the
//     namespace under test withheld from the inner helpers: it must find the
//     leak, or the check could never fail and the property is failed.
//
// Before either, its premises are probed ([Premise]): what must hold for the
// check to mean anything (a capability, a kernel feature, a policy). One
// that does not hold skips the property, naming the cause and the fix.
// [Judge] turns the three into the verdict.
//
// The package links no test framework: the helper binary carries every
// check (a control runs one inside its sandbox), so a check records
// expectations as data and package specs asserts on the outcome with Gomega.
// Register properties from package-level vars; a test binary that runs them
// serves helper requests from its TestMain (specs.Main).
package prop

import (
	"fmt"
	"github.com/nscheck/nscheck/helper"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Need is what a property needs from the environment.
type Need string

const (
	// NeedUserns runs as root, or rootless inside a user namespace that the
	// check creates for itself.
	NeedUserns Need = "userns"
	// NeedRoot needs CAP_SYS_ADMIN in the initial user namespace.
	NeedRoot Need = "root"
)

// Property is one row of the catalog.
type Property struct {
	// ID is stable: "<type>.<name>", the label prop:<ID>, the report key.
	ID string
	// Title says in one line what is asserted.
	Title string
	// Needs selects where the property can run.
	Needs Need
	// Flag is the CLONE_NEW* flag under test. The control withholds it from
	// the helpers the check spawns, and gives it to the sandbox instead.
	Flag uintptr
	// NoControl, when set, says why a control is impossible by nature (an
	// EPERM check, say); the report then shows control "not-run".
	NoControl string
	// Premises are what must hold for the check to mean anything, besides
	// the ones every property has (AllPremises): a property whose premise
	// does not hold is skipped with the cause and the fix.
	Premises []Premise
	// Tags are labels beyond prop:, ns: and needs: (cve:CVE-YYYY-NNNN).
	Tags []string
	// File and Line are where the property was registered (set by
	// Register): its spec's code location, so that a failure, a Ginkgo
	// report and --focus-file point at the property, not at the adapter.
	// A helper process leaves them empty: it runs no specs, and finding
	// the caller's line for each of ~90 properties was a twentieth of a
	// helper's start.
	File string
	Line int
	// Check runs the property. It returns an error only when the check
	// could not be carried out: a harness error, or an environment that
	// cannot run it (a *SkipError, an *UnmetError).
	Check func(t *Trial) error
}

// Namespace is the part of the ID before the first dot ("uts", "ns", ...).
func (p *Property) Namespace() string {
	ns, _, _ := strings.Cut(p.ID, ".")
	return ns
}

// Labels are the Ginkgo labels of the property's spec.
func (p *Property) Labels() []string {
	return append([]string{"prop:" + p.ID, "ns:" + p.Namespace(), "needs:" + string(p.Needs)}, p.Tags...)
}

var (
	// inHelper: this process is a helper (see Register).
	inHelper  = helper.IsHelper()
	catalogMu sync.RWMutex
	// catalog is sized for the whole catalog: every helper process
	// registers it at start, and growing the map step by step rehashes it
	// several times over.
	catalog = make(map[string]*Property, 128)
)

// Register adds p to the catalog. Call it from a package-level var in a
// suite package; package specs turns the catalog into
// Ginkgo specs, so the same specs run under `go test` and `nscheck run`.
func Register(p Property) bool {
	if p.ID == "" || p.Title == "" || p.Check == nil || p.Needs == "" {
		panic(fmt.Sprintf("prop: incomplete property %+v", p))
	}
	if p.Flag == 0 && p.NoControl == "" {
		panic("prop: " + p.ID + " has neither a flag to withhold nor a NoControl reason")
	}
	catalogMu.Lock()
	if _, dup := catalog[p.ID]; dup {
		catalogMu.Unlock()
		panic("prop: property registered twice: " + p.ID)
	}
	if p.File == "" && !inHelper {
		_, p.File, p.Line, _ = runtime.Caller(1)
	}
	pp := &p
	catalog[p.ID] = pp
	catalogMu.Unlock()
	return true
}

// Lookup finds a registered property.
func Lookup(id string) (*Property, bool) {
	catalogMu.RLock()
	defer catalogMu.RUnlock()
	p, ok := catalog[id]
	return p, ok
}

// All lists the registered properties sorted by ID.
func All() []*Property {
	catalogMu.RLock()
	defer catalogMu.RUnlock()
	out := make([]*Property, 0, len(catalog))
	for _, p := range catalog {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
