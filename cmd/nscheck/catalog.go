package main

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/prop"
)

// catalogFile is where the catalog lives in the repository; `make docs`
// regenerates it with `nscheck list --markdown`, and TestCatalogUpToDate
// fails when it differs from the code.
const catalogFile = "docs/properties.md"

// repoRoot is the directory the source paths of the catalog are relative
// to: the module's root, found from this file's own path (absolute in a
// plain build, module-relative under -trimpath).
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file))) // cmd/nscheck/catalog.go
}()

// relSource is a property's file relative to the repository, or the path as
// recorded when the property comes from another module.
func relSource(file string) string {
	if rel, err := filepath.Rel(repoRoot, file); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return file
}

// controlText says what the property's negative control does, or why it
// has none.
func controlText(p *prop.Property) string {
	if p.NoControl != "" {
		return "none: " + p.NoControl
	}
	return fmt.Sprintf("the check runs again inside a sandbox (its own %s, plus %s) that plays the host, "+
		"with %s withheld from the check's helpers; it must find the leak",
		helper.FlagNames(prop.SandboxFlags), helper.FlagNames(p.Flag), helper.FlagNames(p.Flag))
}

// writeCatalogMarkdown writes the catalog as docs/properties.md holds it:
// an index, then each property with its labels, premises, control and
// source.
func writeCatalogMarkdown(out io.Writer, props []*prop.Property) error {
	w := bufio.NewWriter(out)
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	fmt.Fprintf(w, "# The property catalog\n\n")
	fmt.Fprintf(w, "<!-- Generated from the code by `nscheck list --markdown` (`make docs`); do not edit. -->\n\n")
	fmt.Fprintf(w, "%d properties. Each has premises (what must hold for its check to mean anything:\n", len(props))
	fmt.Fprintf(w, "one that does not hold skips it, naming the cause and the fix) and a negative\n")
	fmt.Fprintf(w, "control (a run of the check where the leak is made to happen: it must be found).\n")
	fmt.Fprintf(w, "Labels select properties with `--label-filter`; ids are stable.\n\n")
	fmt.Fprintf(w, "| property | namespace | needs | asserts |\n|---|---|---|---|\n")
	for _, p := range props {
		fmt.Fprintf(w, "| [`%s`](#%s) | %s | %s | %s |\n", p.ID, anchor(p.ID), p.Namespace(), p.Needs, esc.Replace(p.Title))
	}
	ns := ""
	for _, p := range props {
		if p.Namespace() != ns {
			ns = p.Namespace()
			fmt.Fprintf(w, "\n## %s\n", ns)
		}
		fmt.Fprintf(w, "\n### %s\n\n%s\n\n", p.ID, p.Title)
		labels := p.Labels()
		for i, l := range labels {
			labels[i] = "`" + l + "`"
		}
		fmt.Fprintf(w, "- labels: %s\n", strings.Join(labels, ", "))
		fmt.Fprintf(w, "- premises:\n")
		for _, pr := range p.AllPremises() {
			fmt.Fprintf(w, "  - `%s`: %s\n", pr.Key, pr.Why)
		}
		fmt.Fprintf(w, "- control: %s\n", controlText(p))
		src := relSource(p.File)
		if strings.HasPrefix(src, "/") || strings.Contains(src, "..") {
			fmt.Fprintf(w, "- source: `%s:%d`\n", src, p.Line)
		} else {
			fmt.Fprintf(w, "- source: [%s:%d](../%s#L%d)\n", src, p.Line, src, p.Line)
		}
	}
	return w.Flush()
}

// anchor is the id GitHub gives the heading "### id".
func anchor(id string) string { return strings.ReplaceAll(id, ".", "") }
