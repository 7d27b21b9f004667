// Package report is nscheck's one report model (schema "nscheck/v1") and
// its JSON and text forms. Every other output is drawn from this model:
// JUnit, HTML, Markdown and Prometheus (internal/render/...), several
// reports side by side and the diff of two (internal/matrix); the table of
// cmd/nscheck/outputs.go lists them. Reports written on other machines
// come back through Decode. Only the host links it: helpers do not.
//
// The schema is append-only: fields are added, never renamed or removed.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Schema is the value of every report's "schema" field.
const Schema = "nscheck/v1"

// Verdicts of a property.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
)

// Report is one run of nscheck on one kernel.
type Report struct {
	Schema string `json:"schema"`
	// Host names the machine (or Kubernetes node) the report is from.
	Host       string    `json:"host,omitempty"`
	Kernel     Kernel    `json:"kernel"`
	Privilege  Privilege `json:"privilege"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Summary    Summary   `json:"summary"`
	Results    []Result  `json:"results"`
	// Environment is the diagnosis of `nscheck env` (kernel config,
	// sysctls, LSM, privilege) when it was taken.
	Environment json.RawMessage `json:"environment,omitempty"`
	// Untrusted names each broken namespace type that the harness relies
	// on (the control's sandbox needs a mount and a PID namespace, say),
	// once, with the properties it kept from being verified: those are
	// skipped, their Untrusted field naming the same cause. Tally fills it.
	Untrusted []Untrusted `json:"untrusted,omitempty"`
	// Errors are failures of the run itself (not of a property): a guard
	// that found the host changed, a kernel that did not boot ...
	Errors []string `json:"errors,omitempty"`
	// VM describes the virtual machine of a report made by `nscheck vm`.
	VM *VM `json:"vm,omitempty"`
}

// Untrusted is one broken namespace type the harness relies on.
type Untrusted struct {
	// Cause is what the kernel did wrong: "the kernel did not create a new
	// mount namespace".
	Cause string `json:"cause"`
	// Properties are the ids of the properties it left unverified.
	Properties []string `json:"properties"`
}

// VM is how `nscheck vm` booted the kernel of a report.
type VM struct {
	// Image is the kernel as it was named (an image, a .deb, a directory).
	Image string `json:"image,omitempty"`
	// Accel is the QEMU accelerator used (tcg, kvm).
	Accel string `json:"accel,omitempty"`
	// Firmware is what started the kernel: "qboot" or "seabios".
	Firmware string `json:"firmware,omitempty"`
	// CPU is QEMU's -cpu model.
	CPU string `json:"cpu,omitempty"`
	// Entry is how the kernel was booted: "pvh" (the uncompressed kernel
	// through its PVH entry point), "bzimage", or "image" (an arm64 Image).
	Entry string `json:"entry,omitempty"`
	// Cmdline is the guest kernel's command line (/proc/cmdline).
	Cmdline string `json:"cmdline,omitempty"`
	// Sysctls are namespace-related knobs as the guest kernel applied them.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Modules are the kernel modules the guest loaded from the initramfs.
	Modules []string `json:"modules,omitempty"`
	// Cgroup is the cgroup layout the guest's init mounted: "v2+named",
	// "v2", "hybrid" or "v1" (nscheck vm --cgroup).
	Cgroup string `json:"cgroup,omitempty"`
	// BootMS is the time from starting QEMU to init answering; TotalMS to
	// the report (and power-off).
	BootMS  int64 `json:"boot_ms,omitempty"`
	TotalMS int64 `json:"total_ms,omitempty"`
}

// Kernel identifies the kernel the report is about.
type Kernel struct {
	Release string `json:"release"`
	Version string `json:"version"`
	Machine string `json:"machine"`
}

// Privilege says what nscheck ran as.
type Privilege struct {
	EUID int    `json:"euid"`
	Mode string `json:"mode"`
}

// Summary counts the results by state.
type Summary struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Result is the verdict on one property.
type Result struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Title     string `json:"title"`
	State     string `json:"state"`
	// Reason is empty only when the property passed.
	Reason     string `json:"reason,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	// Evidence is what was seen: "inside" (the helper's view), "host" (the
	// observer's), "leaks" and "control" (the control run's evidence).
	Evidence map[string]any `json:"evidence"`
	// Control is "detected", "missed" or "not-run".
	Control       string `json:"control"`
	ControlReason string `json:"control_reason,omitempty"`
	// Untrusted, on a skipped property, is the broken namespace type the
	// harness relies on that kept it from being verified (see
	// Report.Untrusted).
	Untrusted string `json:"untrusted,omitempty"`
}

// Tally recomputes the summary and the run-level untrusted notes from the
// results.
func (r *Report) Tally() {
	r.Summary = Summary{}
	r.Untrusted = nil
	for _, res := range r.Results {
		if res.Untrusted != "" {
			i := slices.IndexFunc(r.Untrusted, func(u Untrusted) bool { return u.Cause == res.Untrusted })
			if i < 0 {
				i = len(r.Untrusted)
				r.Untrusted = append(r.Untrusted, Untrusted{Cause: res.Untrusted})
			}
			r.Untrusted[i].Properties = append(r.Untrusted[i].Properties, res.ID)
		}
		switch res.State {
		case Passed:
			r.Summary.Passed++
		case Failed:
			r.Summary.Failed++
		case Skipped:
			r.Summary.Skipped++
		}
	}
}

// Sort orders the results by property ID.
func (r *Report) Sort() {
	sort.SliceStable(r.Results, func(i, j int) bool { return r.Results[i].ID < r.Results[j].ID })
}

// OK reports whether no property failed and the run had no error.
func (r *Report) OK() bool { return r.Summary.Failed == 0 && len(r.Errors) == 0 }

// Require turns a skip of any of the required properties into an error of
// the run: on a runner that must verify them (the whole catalog on a
// privileged CI runner, say) a skip is a failure. A required property
// that did not run at all is one too.
func (r *Report) Require(ids []string) {
	byID := make(map[string]*Result, len(r.Results))
	for i := range r.Results {
		byID[r.Results[i].ID] = &r.Results[i]
	}
	for _, id := range ids {
		res, ok := byID[id]
		switch {
		case !ok:
			r.Errors = append(r.Errors, "required (--require) but not run: "+id)
		case res.State == Skipped:
			r.Errors = append(r.Errors, "required (--require) but skipped: "+id+": "+res.Reason)
		}
	}
}

// NothingVerified reports a run in which no property passed: whatever it
// skipped, it proved nothing about this kernel, and must not look green.
func (r *Report) NothingVerified() bool { return r.Summary.Passed == 0 }

// Verified says in words how many properties were verified: "61 of 63
// properties verified", or that nothing was.
func (r *Report) Verified() string {
	total := r.Summary.Passed + r.Summary.Failed + r.Summary.Skipped
	if r.NothingVerified() {
		return fmt.Sprintf("nothing was verified: none of %d properties passed", total)
	}
	return fmt.Sprintf("%d of %d properties verified", r.Summary.Passed, total)
}

// Name is how the report is labelled next to others: the host, else the
// kernel release.
func (r *Report) Name() string {
	if r.Host != "" && r.Kernel.Release != "" {
		return r.Host + "/" + r.Kernel.Release
	}
	if r.Host != "" {
		return r.Host
	}
	return r.Kernel.Release
}

// NormalizeVersion turns a release such as "6.1.0-28-cloud-amd64" or
// "6.18.44-fc-v782" into "X.Y.Z" ("6.1.0", "6.18.44"); "" when it has none.
// It is matched by hand, not with a regexp: this package is linked into
// every helper process, which would compile a package-level regexp at start.
func NormalizeVersion(release string) string {
	major, rest := leadingDigits(release)
	rest, dot := strings.CutPrefix(rest, ".")
	minor, rest := leadingDigits(rest)
	if major == "" || !dot || minor == "" {
		return ""
	}
	patch := "0"
	if rest, dot = strings.CutPrefix(rest, "."); dot {
		if p, _ := leadingDigits(rest); p != "" {
			patch = p
		}
	}
	return major + "." + minor + "." + patch
}

// leadingDigits splits s after its leading ASCII digits.
func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// ThisKernel describes the running kernel (uname).
func ThisKernel() Kernel {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Kernel{}
	}
	release := unix.ByteSliceToString(u.Release[:])
	return Kernel{Release: release, Version: NormalizeVersion(release), Machine: unix.ByteSliceToString(u.Machine[:])}
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// ErrSchema marks a document that is not an nscheck/v1 report.
var ErrSchema = errors.New("not an nscheck/v1 report")

// Decode reads one report and checks that it is one: JSON, the right
// schema, results with ids and known states.
func Decode(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %v", ErrSchema, err)
	}
	if probe.Schema == nil {
		return nil, fmt.Errorf("%w: no \"schema\" field", ErrSchema)
	}
	if *probe.Schema != Schema {
		return nil, fmt.Errorf("%w: schema is %q", ErrSchema, *probe.Schema)
	}
	var rep Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	seen := map[string]bool{}
	for i, res := range rep.Results {
		if res.ID == "" {
			return nil, fmt.Errorf("%w: result %d has no id", ErrSchema, i)
		}
		if seen[res.ID] {
			return nil, fmt.Errorf("%w: property %s appears twice", ErrSchema, res.ID)
		}
		seen[res.ID] = true
		switch res.State {
		case Passed, Failed, Skipped:
		default:
			return nil, fmt.Errorf("%w: property %s has state %q", ErrSchema, res.ID, res.State)
		}
	}
	rep.Tally()
	return &rep, nil
}

// ReadFile decodes the report in path.
func ReadFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open report: %w", err)
	}
	defer f.Close()
	rep, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// WriteFile writes the report as JSON to path atomically ("-" is stdout).
func WriteFile(path string, r *Report) error {
	return WriteAtomic(path, func(w io.Writer) error { return WriteJSON(w, r) })
}

// WriteAtomic writes what fill produces to path through a temporary file in
// the same directory and a rename, so readers never see half a file; "-"
// writes to stdout.
func WriteAtomic(path string, fill func(io.Writer) error) error {
	if path == "-" {
		return fill(os.Stdout)
	}
	dir, base := splitPath(path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}

func splitPath(path string) (dir, base string) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i+1], path[i+1:]
		}
	}
	return ".", path
}
