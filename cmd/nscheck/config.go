package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/nscheck/nscheck/internal/kconfig"
	"github.com/nscheck/nscheck/internal/nsfs"
)

func init() {
	register(&command{name: "config", summary: "check a kernel config (plain or gzip) for namespace support, before booting it", run: configCmd})
}

// configReport is the JSON form of `nscheck config`.
type configReport struct {
	Source     string               `json:"source"`
	Version    string               `json:"version,omitempty"`
	Arch       string               `json:"arch,omitempty"`
	Namespaces []kconfig.NSVerdict  `json:"namespaces"`
	Options    []kconfig.Dependency `json:"options"`
	// Missing lists the namespace types the kernel cannot create (those
	// not ignored); the exit code is 1 when it is not empty.
	Missing []string `json:"missing"`
	// Enable is the command that turns on every missing option.
	Enable string `json:"enable,omitempty"`
}

func configCmd(args []string) int {
	fs := newFlags("config", "config [--json FILE] [--ignore TYPE,...] FILE")
	jsonOut := fs.String("json", "", "write the verdict as JSON to `FILE` (- for stdout)")
	ignore := fs.String("ignore", "", "namespace `TYPES` (comma-separated) whose absence does not fail the check, e.g. time for a kernel older than 5.6")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fail(exitUsage, "config: want exactly one kernel config file (see nscheck config --help)")
	}
	var ignored []string
	if *ignore != "" {
		ignored = strings.Split(*ignore, ",")
		for _, t := range ignored {
			if !slices.Contains(nsfs.Types, t) {
				return fail(exitUsage, "config: --ignore: unknown namespace type %q (types: %s)", t, strings.Join(nsfs.Types, ", "))
			}
		}
	}
	c, err := kconfig.ParseFile(fs.Arg(0))
	if err != nil {
		return fail(exitUsage, "config: %v", err)
	}
	rep := configReport{Source: c.Source, Version: c.Version, Arch: c.Arch, Namespaces: c.Namespaces(), Options: c.Deps(), Missing: []string{}}
	var enable []string
	for _, v := range rep.Namespaces {
		if !v.Available && !slices.Contains(ignored, v.Type) {
			rep.Missing = append(rep.Missing, v.Type)
			for _, o := range v.Enable {
				if !slices.Contains(enable, o) {
					enable = append(enable, o)
				}
			}
		}
	}
	if len(enable) > 0 {
		rep.Enable = kconfig.EnableCommand(enable)
	}
	text := io.Writer(os.Stdout)
	if *jsonOut == "-" {
		text = os.Stderr
	}
	if err := writeConfigText(text, &rep, ignored); err != nil {
		return fail(exitFail, "config: write: %v", err)
	}
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, rep); err != nil {
			return fail(exitFail, "config: write --json: %v", err)
		}
	}
	if len(rep.Missing) > 0 {
		return exitFail
	}
	return exitOK
}

func writeConfigText(w io.Writer, rep *configReport, ignored []string) error {
	version := rep.Version
	if version == "" {
		version = "unknown (no version header: version rules not applied)"
	}
	fmt.Fprintf(w, "config %s: kernel %s\n", rep.Source, version)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  TYPE\tOPTION\tSTATE\tVERDICT\n")
	for _, v := range rep.Namespaces {
		verdict := "available"
		switch {
		case !v.Available && slices.Contains(ignored, v.Type):
			verdict = "missing (ignored): " + v.Reason
		case !v.Available:
			verdict = "MISSING: " + v.Reason
		case v.Option == "":
			verdict = "available (" + v.Reason + ")"
		}
		opt := v.Option
		if opt == "" {
			opt = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", v.Type, opt, v.State, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var opts []string
	for _, o := range rep.Options {
		opts = append(opts, o.Option+"="+o.State)
	}
	fmt.Fprintf(w, "  options %s\n", strings.Join(opts, " "))
	if len(rep.Missing) == 0 {
		_, err := fmt.Fprintln(w, "no namespace type is missing")
		return err
	}
	fmt.Fprintf(w, "missing: %s\n", strings.Join(rep.Missing, ", "))
	if rep.Enable != "" {
		fmt.Fprintf(w, "fix: %s (in the kernel source tree, then rebuild)\n", rep.Enable)
	}
	return nil
}
