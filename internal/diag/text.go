package diag

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText renders the diagnosis for a person: the kernel and its config,
// one line per namespace type, the policy knobs, what nscheck runs as, and
// every problem with its exact fix.
func WriteText(w io.Writer, d *Diagnosis) error {
	p := &printer{w: w}
	p.f("kernel %s (version %s, %s)\n", d.Kernel.Release, d.Kernel.Version, d.Kernel.Machine)
	if d.Config.Source != "" {
		p.f("config %s (header version %s)\n", d.Config.Source, orDash(d.Config.Version))
	} else {
		p.f("config none found\n")
	}
	for _, t := range d.Config.Tried {
		p.f("  tried %s\n", t)
	}
	if d.Config.Note != "" {
		p.f("  note: %s\n", d.Config.Note)
	}

	p.f("\nnamespaces\n")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  TYPE\tOPTION\tCONFIG\tMAX\tROOT\tUNPRIVILEGED\tVERDICT\n")
	for i, n := range d.Namespaces {
		opt := "-"
		if i < len(d.Config.Namespaces) && d.Config.Namespaces[i].Option != "" {
			opt = d.Config.Namespaces[i].Option
		}
		verdict := "available"
		if !n.Available {
			verdict = "UNAVAILABLE"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Type, opt, n.Config, orDash(n.Max), probeCell(n.Root), probeCell(n.Unprivileged), verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Config.Options) > 0 {
		var opts []string
		for _, o := range d.Config.Options {
			opts = append(opts, o.Option+"="+o.State)
		}
		p.f("  options %s\n", strings.Join(opts, " "))
	}

	p.f("\npolicy\n")
	for _, k := range d.Knobs {
		if strings.HasPrefix(k.Name, "user.max_") {
			continue // in the table above
		}
		v := k.State
		if k.State == KnobSet {
			v = k.Value
		}
		p.f("  %s = %s", k.Name, v)
		if k.Meaning != "" {
			p.f("  (%s)", k.Meaning)
		}
		p.f("\n")
	}
	params := "none of user_namespace.enable, namespace.unpriv_enable, apparmor, security, lsm"
	if len(d.Cmdline.Params) > 0 {
		var kv []string
		for k, v := range d.Cmdline.Params {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		params = strings.Join(kv, " ")
	}
	p.f("  kernel command line: %s\n", params)
	p.f("  AppArmor: %s", d.LSM.AppArmor)
	if len(d.LSM.Active) > 0 {
		p.f("; active LSMs: %s", strings.Join(d.LSM.Active, ","))
	}
	p.f("\n  cgroup: %s\n", d.Cgroup)

	s := d.Self
	p.f("\nnscheck runs as euid %d, CapEff %s (CAP_SYS_ADMIN %s), NoNewPrivs %d, seccomp %s, user namespace %s\n",
		s.EUID, s.CapEff, yesNo(s.CapSysAdmin), b2i(s.NoNewPrivs), s.Seccomp, s.UserNS)
	if len(s.UIDMap) > 0 {
		var m []string
		for _, r := range s.UIDMap {
			m = append(m, fmt.Sprintf("%d %d %d", r.Inside, r.Outside, r.Count))
		}
		p.f("  uid_map: %s\n", strings.Join(m, "; "))
	}
	p.f("  capabilities: effective %s; bounding %s\n", lacking(s.EffectiveLacks), lacking(s.BoundingLacks))
	p.f("  /proc: %s; loopback: %s\n", s.Proc, s.Loopback)
	p.f("  scratch space: %s\n", s.Scratch)
	for _, m := range s.Mounted {
		p.f("  nscheck mounted, in a mount namespace of its own: %s\n", m)
	}
	if s.ViewError != "" {
		p.f("  nscheck's view: %s\n", s.ViewError)
	}
	if len(s.Container) > 0 {
		p.f("  inside a container? signs: %s\n", strings.Join(s.Container, "; "))
	} else {
		p.f("  no sign of a container\n")
	}

	for _, note := range d.Notes {
		p.f("note: %s\n", note)
	}
	if len(d.Premises) > 0 {
		p.f("\npremises (what checks need, probed as a run probes them)\n")
		for _, pr := range d.Premises {
			p.f("  %s: %s\n", pr.Key, pr.State)
		}
	}
	if len(d.Predictions) > 0 {
		p.f("\nproperties a run here will skip (%d)\n", len(d.Predictions))
		for _, pr := range d.Predictions {
			p.f("  %s: %s\n", pr.ID, pr.Skip)
		}
	}
	if len(d.Problems) == 0 {
		un := len(d.Unavailable())
		p.f("\n%d of %d namespace types available; no problem found with them", len(d.Namespaces)-un, len(d.Namespaces))
		if len(d.Predictions) > 0 {
			p.f(" (%d properties will skip on their premises, above)", len(d.Predictions))
		}
		p.f("\n")
		return p.err
	}
	p.f("\nproblems\n")
	for _, c := range d.Problems {
		p.f("- %s\n", c.Text)
		for i, f := range c.Fixes {
			label := "fix"
			if i > 0 {
				label = "or"
			}
			writeFix(p, label, f)
		}
	}
	un := len(d.Unavailable())
	p.f("\n%d of %d namespace types available\n", len(d.Namespaces)-un, len(d.Namespaces))
	return p.err
}

// lacking says which capabilities a set lacks, in a few words.
func lacking(names []string) string {
	switch {
	case len(names) == 0:
		return "full"
	case len(names) > 20:
		return fmt.Sprintf("lacks %d of them", len(names))
	}
	return "lacks " + strings.Join(names, ", ")
}

func writeFix(p *printer, label string, f Fix) {
	if f.File != "" && !f.Persist {
		p.f("  %s: create %s:\n%s", label, f.File, indent(f.Content, "      "))
		label = "then"
	}
	for _, c := range f.Commands {
		p.f("  %s: %s\n", label, c)
		label = "and"
	}
	if f.File != "" && f.Persist {
		p.f("  persist: %s:\n%s", f.File, indent(f.Content, "      "))
	}
	if f.Note != "" {
		p.f("  (%s)\n", f.Note)
	}
}

func probeCell(p *Probe) string {
	switch {
	case p == nil:
		return "-"
	case p.NotRun != "":
		return "not run"
	case p.OK:
		return "ok"
	case p.Errno != "":
		return p.Errno
	}
	return "error"
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
