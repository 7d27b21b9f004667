// Package release puts the lean helper (internal/helperbin) into a tagged
// release of nscheck, so that what Go users type,
//
//	go install github.com/nscheck/nscheck/cmd/nscheck@latest
//
// gives a binary whose helpers start as fast as `make build`'s. go install
// runs no build step of ours, so the helper cannot be built then: `make
// release VERSION=vX.Y.Z` builds it for each of Arches and commits it,
// gzipped, with the version it is for, in cmd/nscheck/release (Dir) of the
// tagged commit only. That commit sits beside main, not on it: main never
// carries a binary, and a tree that is not exactly the release (a
// pseudo-version, "+dirty", "(devel)") finds no helper for its version in
// Helper and runs its helpers from itself (internal/initorder).
//
// Proxy and GoInstall let tests and `make bench` do what a user's go
// install does at a release, from a module proxy on disk.
package release

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/nscheck/nscheck/internal/leanbuild"
)

// Dir is where in the module a release keeps its helpers and their version.
const Dir = "cmd/nscheck/release"

// Arches are the architectures a release carries a lean helper for.
var Arches = []string{"amd64", "arm64"}

const versionFile = "version"

func helperFile(goarch string) string { return "helper-linux-" + goarch + ".gz" }

// Files builds the lean helper of the module at root for each of Arches and
// returns what goes into Dir for release version: each helper gzipped, and
// the version. The helpers are lean builds (internal/leanbuild) without the
// VCS stamp, so that the same sources and toolchain give the same bytes.
func Files(root, version string) (map[string][]byte, error) {
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Build(version) != "" {
		return nil, fmt.Errorf("release version %q: want a canonical semantic version such as v1.2.3", version)
	}
	files := map[string][]byte{versionFile: []byte(version + "\n")}
	tmp, err := os.MkdirTemp("", "nscheck-release-")
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", version, err)
	}
	defer os.RemoveAll(tmp)
	for _, arch := range Arches {
		bin := filepath.Join(tmp, "helper-"+arch)
		if err := leanbuild.Helper(root, bin, leanbuild.Options{GOARCH: arch, Reproducible: true}); err != nil {
			return nil, fmt.Errorf("release %s: the lean helper: %w", version, err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", version, err)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // the level is valid
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip the %s lean helper: %w", arch, err)
		}
		files[helperFile(arch)] = gz.Bytes()
	}
	return files, nil
}

// Helper returns the gzipped lean helper for goarch that files (a release
// directory, as Files fills it) holds, when it is the release of version,
// the version this binary was built as (debug.ReadBuildInfo). Otherwise it
// returns why not: a development tree has no release, and any other
// version's helper may not speak this binary's protocol.
func Helper(files fs.FS, version, goarch string) ([]byte, error) {
	v, err := fs.ReadFile(files, versionFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("not a release: no lean helper in the sources")
	}
	if err != nil {
		return nil, fmt.Errorf("read the release version: %w", err)
	}
	if rel := strings.TrimSpace(string(v)); rel != version {
		return nil, fmt.Errorf("the lean helper in the sources is release %s's, this is %s", rel, version)
	}
	gz, err := fs.ReadFile(files, helperFile(goarch))
	if err != nil {
		return nil, fmt.Errorf("release %s has no lean helper for %s", version, goarch)
	}
	return gz, nil
}

// Write writes the lean helper that Helper returned into w.
func Write(w io.Writer, gz []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("read the release's lean helper: %w", err)
	}
	if _, err := io.Copy(w, zr); err != nil {
		return fmt.Errorf("unpack the release's lean helper: %w", err)
	}
	return nil
}
