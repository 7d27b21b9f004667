// Package diag diagnoses why a namespace cannot be used here, and says the
// exact fix.
//
// "unshare failed: Operation not permitted" can mean a missing privilege, a
// seccomp filter, a distro sysctl, an AppArmor restriction, a per-user-
// namespace limit set to 0, or a kernel built without the feature. Diagnose
// gathers every one of those facts (the kernel config, the policy sysctls,
// the kernel command line, the LSMs, what nscheck itself runs as), then
// creates each namespace type for real, as root and as an unprivileged uid
// through a user namespace, and maps each refusal's errno to the knob that
// caused it and the command that removes it. The same mapping turns a
// property's clone refusal into its skip reason (see [ExplainStart]).
package diag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/kconfig"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsprobe"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/prop"
)

// Options shape a diagnosis.
type Options struct {
	// ConfigPath, when set, is the kernel config to use instead of looking
	// for the running kernel's.
	ConfigPath string
	// NoProbe leaves out the live probes (no helper is started).
	NoProbe bool
	// UnprivUID is the uid (and gid) the unprivileged probe drops to when
	// nscheck runs as root; 0 means 65534 (nobody).
	UnprivUID int
}

// Diagnosis is the whole picture; its JSON form is the "environment" of a
// report.
type Diagnosis struct {
	Kernel     report.Kernel `json:"kernel"`
	Config     ConfigInfo    `json:"config"`
	Knobs      []Knob        `json:"knobs"`
	Cmdline    Cmdline       `json:"cmdline"`
	LSM        LSM           `json:"lsm"`
	Self       Self          `json:"self"`
	Cgroup     string        `json:"cgroup"`
	Namespaces []Namespace   `json:"namespaces"`
	// Problems are the distinct causes found, each with its fixes.
	Problems []Cause `json:"problems,omitempty"`
	// Predictions are the properties of the catalog a run here will skip,
	// from their premises (not made with NoProbe).
	Predictions []prop.Prediction `json:"predictions,omitempty"`
	// Premises are the distinct premises of the catalog and what their
	// probes found (not made with NoProbe): capabilities, veth, loopback,
	// the /proc and scratch space, the control's sandbox.
	Premises []PremiseState `json:"premises,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
}

// ConfigInfo says which kernel config was used and what it says.
type ConfigInfo struct {
	// Source is the path of the config used; "" when none was found.
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`
	// Tried lists every place looked at, with what was there.
	Tried      []string             `json:"tried"`
	Note       string               `json:"note,omitempty"`
	Namespaces []kconfig.NSVerdict  `json:"namespaces,omitempty"`
	Options    []kconfig.Dependency `json:"options,omitempty"`
}

// Namespace is the verdict on one namespace type.
type Namespace struct {
	Type string `json:"type"`
	// Config is the config's verdict: built-in, absent, or unknown (no
	// config found).
	Config string `json:"config"`
	// Max is user.max_<type>_namespaces in this user namespace.
	Max string `json:"max,omitempty"`
	// Root is the probe as root (not run when nscheck is not root);
	// Unprivileged the probe as an unprivileged uid through a new user
	// namespace.
	Root         *Probe `json:"root,omitempty"`
	Unprivileged *Probe `json:"unprivileged,omitempty"`
	// Available says whether nscheck, as it runs now, can create the type.
	Available bool `json:"available"`
	// Cause is why not (or, when available as root, why unprivileged use
	// is refused).
	Cause *Cause `json:"cause,omitempty"`
}

// Probe is one attempt to create a namespace.
type Probe struct {
	// As says who tried: "root", or "uid 65534 through a user namespace".
	As string `json:"as"`
	OK bool   `json:"ok"`
	// NotRun says why the probe could not be made.
	NotRun string `json:"not_run,omitempty"`
	Errno  string `json:"errno,omitempty"`
	Error  string `json:"error,omitempty"`
	Cause  *Cause `json:"cause,omitempty"`
}

// JSON is the diagnosis as JSON (the report's "environment").
func (d *Diagnosis) JSON() json.RawMessage {
	data, err := json.Marshal(d)
	if err != nil {
		return nil
	}
	return data
}

// Unavailable lists the namespace types nscheck cannot create as it runs.
func (d *Diagnosis) Unavailable() []Namespace {
	var out []Namespace
	for _, n := range d.Namespaces {
		if !n.Available {
			out = append(out, n)
		}
	}
	return out
}

// Diagnose gathers the facts and, unless o.NoProbe, probes every namespace
// type. A config that cannot be found is a note; one named by o.ConfigPath
// that cannot be read is an error.
func Diagnose(ctx context.Context, o Options) (*Diagnosis, error) {
	f, ci, err := gather(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	d := &Diagnosis{
		Kernel: report.ThisKernel(), Config: ci, Cmdline: f.cmdline, LSM: f.lsm, Self: f.self,
		Cgroup: cgroupView(),
	}
	for _, name := range append(append([]string{}, nsKnobNames()...), knobUnprivClone, knobAARestrict, knobAAComplain, knobAAForce, knobAAUnconfined) {
		d.Knobs = append(d.Knobs, f.knobs[name])
	}
	root := prop.Capable()
	var rootRes, unprivRes map[string]nsprobe.Result
	unprivAs := "this uid through a user namespace"
	if !o.NoProbe {
		if root {
			rootRes = nsprobe.All(ctx, false)
			uid := o.UnprivUID
			if uid == 0 {
				uid = 65534
			}
			unprivAs = fmt.Sprintf("uid %d through a user namespace", uid)
			unprivRes, err = nsprobe.As(ctx, uid)
			if err != nil {
				unprivRes = nil
				d.Notes = append(d.Notes, "the unprivileged probe could not run: "+err.Error())
			}
		} else {
			unprivRes = nsprobe.All(ctx, true)
		}
	}
	for _, typ := range nsfs.Types {
		n := Namespace{Type: typ, Config: "unknown", Max: f.knobs[maxKnob(typ)].Value}
		var cfg *kconfig.NSVerdict
		for i := range ci.Namespaces {
			if ci.Namespaces[i].Type == typ {
				cfg = &ci.Namespaces[i]
				n.Config = cfg.State
			}
		}
		if !o.NoProbe {
			if root {
				as := "root"
				if !f.self.InitialUserNS() {
					as = "root in this user namespace"
				}
				n.Root = f.probe(rootRes, typ, as, false)
			} else {
				n.Root = &Probe{As: "root", NotRun: "nscheck is not root"}
			}
			if unprivRes != nil {
				n.Unprivileged = f.probe(unprivRes, typ, unprivAs, true)
			} else if root {
				n.Unprivileged = &Probe{As: unprivAs, NotRun: "see notes"}
			}
		}
		f.judge(&n, cfg, root, o.NoProbe)
		if cfg != nil && !cfg.Available && n.Available {
			d.Notes = append(d.Notes, fmt.Sprintf("the config says %s namespaces are absent, yet the kernel created one: %s is not this kernel's config", typ, ci.Source))
		}
		d.Namespaces = append(d.Namespaces, n)
	}
	seen := map[string]bool{}
	for _, n := range d.Namespaces {
		if n.Cause != nil && !seen[n.Cause.Text] {
			seen[n.Cause.Text] = true
			d.Problems = append(d.Problems, *n.Cause)
		}
	}
	if !o.NoProbe {
		d.Predictions = prop.Predict(ctx, prop.All())
		d.Premises = premiseStates(ctx, prop.All())
	}
	return d, nil
}

// PremiseState is one premise and what its probe found.
type PremiseState struct {
	Key string `json:"key"`
	// State is "holds", the unmet reason, or "probe failed: ...".
	State string `json:"state"`
}

// premiseStates probes every distinct premise of props (each once per
// process, as a run does).
func premiseStates(ctx context.Context, props []*prop.Property) []PremiseState {
	var out []PremiseState
	seen := map[string]bool{}
	for _, p := range props {
		for _, pr := range p.AllPremises() {
			if seen[pr.Key] {
				continue
			}
			seen[pr.Key] = true
			st := PremiseState{Key: pr.Key, State: "holds"}
			if err := pr.Holds(ctx); err != nil {
				var u *prop.UnmetError
				if errors.As(err, &u) {
					c := *u
					c.Why = "" // a premise shared by properties that need it for different things
					st.State = "unmet: " + c.Reason()
				} else {
					st.State = "probe failed: " + err.Error()
				}
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func nsKnobNames() []string {
	out := make([]string, 0, len(nsfs.Types))
	for _, t := range nsfs.Types {
		out = append(out, maxKnob(t))
	}
	return out
}

// judge decides whether the type is available and why not.
func (f *facts) judge(n *Namespace, cfg *kconfig.NSVerdict, root, noProbe bool) {
	if noProbe {
		n.Available = cfg == nil || cfg.Available
		if max, ok := f.knobInt(maxKnob(n.Type)); ok && max == 0 {
			n.Available = false
			c, _ := f.cause(unix.ENOSPC, []string{n.Type}, !root)
			n.Cause = &c
		} else if cfg != nil && !cfg.Available {
			c, _ := f.cause(unix.EINVAL, []string{n.Type}, !root)
			n.Cause = &c
		}
		return
	}
	mine, other := n.Unprivileged, n.Root
	if root {
		mine, other = n.Root, n.Unprivileged
	}
	n.Available = mine != nil && mine.OK
	switch {
	case mine != nil && mine.Cause != nil:
		n.Cause = mine.Cause
	case other != nil && other.Cause != nil:
		n.Cause = other.Cause
	}
}

// probe turns a raw probe into a Probe with its cause.
func (f *facts) probe(res map[string]nsprobe.Result, typ, as string, unpriv bool) *Probe {
	r, ok := res[typ]
	p := &Probe{As: as}
	switch {
	case !ok:
		p.NotRun = "no result"
	case r.Err == "":
		p.OK = true
	default:
		p.Error = r.Err
		if r.Errno != 0 {
			errno := syscall.Errno(r.Errno)
			p.Errno = errnoString(errno)
			typs := []string{typ}
			if unpriv && typ != "user" {
				typs = []string{"user", typ}
			}
			if c, ok := f.cause(errno, typs, unpriv); ok {
				p.Cause = &c
			}
		}
	}
	return p
}

func init() {
	// Every binary that links the diagnosis explains clone refusals with it.
	prop.ExplainStart = ExplainStart
}

// gather collects the cheap facts; configPath "" looks for the running
// kernel's config.
func gather(configPath string) (*facts, ConfigInfo, error) {
	f := &facts{knobs: map[string]Knob{}, self: readSelf(), lsm: readLSM(), cmdline: readCmdline()}
	for _, k := range readKnobs() {
		f.knobs[k.Name] = k
	}
	f.knobs[knobThreadsMax] = readKnob(knobThreadsMax)
	f.kernel = report.ThisKernel().Release
	ci, err := findConfig(configPath, f.kernel)
	if err != nil {
		return nil, ConfigInfo{}, err
	}
	f.config = ci.config
	return f, ci.ConfigInfo, nil
}

type configFound struct {
	ConfigInfo
	config *kconfig.Config
}

var (
	autoOnce   sync.Once
	autoConfig configFound
)

// findConfig loads the named config, or the running kernel's (looked for
// once per process).
func findConfig(path, release string) (configFound, error) {
	if path != "" {
		c, err := kconfig.ParseFile(path)
		if err != nil {
			return configFound{}, err
		}
		return describeConfig(kconfig.Found{Config: c, Tried: []string{path + ": used (--config)"}}, release), nil
	}
	autoOnce.Do(func() {
		autoConfig = describeConfig(kconfig.Find(kconfig.Candidates(release)), release)
	})
	return autoConfig, nil
}

func describeConfig(found kconfig.Found, release string) configFound {
	cf := configFound{ConfigInfo: ConfigInfo{Tried: found.Tried}, config: found.Config}
	c := found.Config
	if c == nil {
		cf.Note = "no kernel config found (enable CONFIG_IKCONFIG_PROC for /proc/config.gz, or pass --config FILE): the live probes alone decide"
		return cf
	}
	cf.Source, cf.Version = c.Source, c.Version
	cf.Namespaces, cf.Options = c.Namespaces(), c.Deps()
	if v := report.NormalizeVersion(release); c.Version != "" && v != "" && c.Version != v {
		cf.Note = fmt.Sprintf("this config is for %s, the running kernel is %s", c.Version, v)
	}
	return cf
}

// ExplainStart is prop.ExplainStart with the diagnosis behind it: the skip
// reason of a property whose helper the kernel refused names the knob and
// the fix. It returns "" for an errno that is no environmental refusal.
func ExplainStart(e *helper.StartError) string {
	f, _, err := gather("")
	if err != nil {
		return ""
	}
	var typs []string
	for _, t := range nsfs.Types {
		if e.Flags&nsfs.Flags[t] != 0 {
			typs = append(typs, t)
		}
	}
	sort.SliceStable(typs, func(i, j int) bool { return typs[i] == "user" && typs[j] != "user" })
	c, ok := f.cause(helper.Errno(e), typs, !prop.Capable())
	if !ok {
		return ""
	}
	return c.Reason()
}
