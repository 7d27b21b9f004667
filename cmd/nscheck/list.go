package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/nscheck/nscheck/prop"
)

func init() {
	register(&command{name: "list", summary: "list every property id with what it asserts", run: listCmd})
}

func listCmd(args []string) int {
	fs := newFlags("list", "list [--json | --markdown]")
	asJSON := fs.Bool("json", false, "print the catalog as JSON")
	asMarkdown := fs.Bool("markdown", false, "print the catalog as "+catalogFile+" holds it (labels, premises, control, source)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "list: unexpected argument %q", fs.Arg(0))
	}
	if *asJSON && *asMarkdown {
		return fail(exitUsage, "list: --json and --markdown are exclusive")
	}
	props := prop.All()
	if *asMarkdown {
		if err := writeCatalogMarkdown(os.Stdout, props); err != nil {
			return fail(exitFail, "list: %v", err)
		}
		return exitOK
	}
	if *asJSON {
		type row struct {
			ID        string   `json:"id"`
			Namespace string   `json:"namespace"`
			Title     string   `json:"title"`
			Needs     string   `json:"needs"`
			Labels    []string `json:"labels"`
		}
		rows := make([]row, 0, len(props))
		for _, p := range props {
			rows = append(rows, row{p.ID, p.Namespace(), p.Title, string(p.Needs), p.Labels()})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return fail(exitFail, "list: %v", err)
		}
		return exitOK
	}
	width := 0
	for _, p := range props {
		width = max(width, len(p.ID))
	}
	for _, p := range props {
		fmt.Printf("%-*s  %-6s  %s\n", width, p.ID, p.Needs, p.Title)
	}
	return exitOK
}
