package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/prop"
)

// docs/properties.md is generated from the code: a property added,
// retitled, moved or given another premise without regenerating it fails
// here.
func TestCatalogUpToDate(t *testing.T) {
	var want bytes.Buffer
	if err := writeCatalogMarkdown(&want, prop.All()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repoRoot, catalogFile)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the catalog: %v (generate it with `make docs`)", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("%s is not what the code says; regenerate it with `make docs` (go run ./cmd/nscheck list --markdown > %s)\nfirst difference, line %d:\n  file: %s\n  code: %s",
			catalogFile, catalogFile, i+1, line(gl), line(wl))
	}
}

// Every source path of the catalog is relative to the repository, so that
// the links work on GitHub and the file does not depend on the checkout.
func TestCatalogSourcesRelative(t *testing.T) {
	for _, p := range prop.All() {
		src := relSource(p.File)
		if filepath.IsAbs(src) || strings.HasPrefix(src, "..") || !strings.HasPrefix(src, "suites/") {
			t.Errorf("%s: source %q is not a file under suites/", p.ID, src)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
			t.Errorf("%s: %v", p.ID, err)
		}
	}
}
