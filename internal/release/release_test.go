package release

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

func gzipped(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A binary uses a release's helper only when it was built as exactly that
// release, for an architecture the release carries.
func TestHelper(t *testing.T) {
	rel := fstest.MapFS{
		"README":                {Data: []byte("main holds only this")},
		"version":               {Data: []byte("v1.2.3\n")},
		"helper-linux-amd64.gz": {Data: gzipped(t, "amd64 helper")},
		"helper-linux-arm64.gz": {Data: gzipped(t, "arm64 helper")},
	}
	for _, tc := range []struct {
		files             fstest.MapFS
		version, arch     string
		want, whyContains string
	}{
		{rel, "v1.2.3", "amd64", "amd64 helper", ""},
		{rel, "v1.2.3", "arm64", "arm64 helper", ""},
		{rel, "v1.2.3", "riscv64", "", "no lean helper for riscv64"},
		{rel, "v1.2.4", "amd64", "", "release v1.2.3's, this is v1.2.4"},
		{rel, "v1.2.3+dirty", "amd64", "", "this is v1.2.3+dirty"},
		{rel, "v1.2.4-0.20261204100000-0123456789ab", "amd64", "", "release v1.2.3's"},
		{rel, "(devel)", "amd64", "", "this is (devel)"},
		{fstest.MapFS{"README": rel["README"]}, "v1.2.3", "amd64", "", "not a release"},
	} {
		gz, err := Helper(tc.files, tc.version, tc.arch)
		if tc.whyContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.whyContains) {
				t.Errorf("%s %s: got %v, want an error saying %q", tc.version, tc.arch, err, tc.whyContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tc.version, tc.arch, err)
			continue
		}
		var out bytes.Buffer
		if err := Write(&out, gz); err != nil || out.String() != tc.want {
			t.Errorf("%s %s: wrote %q (%v), want %q", tc.version, tc.arch, out.String(), err, tc.want)
		}
	}
}

func TestWriteCorrupt(t *testing.T) {
	gz := gzipped(t, strings.Repeat("helper ", 1000))
	if err := Write(&bytes.Buffer{}, gz[:len(gz)/2]); err == nil {
		t.Error("a truncated helper was written without an error")
	}
	if err := Write(&bytes.Buffer{}, []byte("not gzip")); err == nil {
		t.Error("a helper that is not gzip was written without an error")
	}
}

// A release version is a canonical semantic version: nothing is built
// for anything else.
func TestFilesVersion(t *testing.T) {
	for _, v := range []string{"", "1.2.3", "v1.2", "v1.2.3+meta", "latest", "v01.2.3"} {
		if _, err := Files(t.TempDir(), v); err == nil || !strings.Contains(err.Error(), "semantic version") {
			t.Errorf("Files(%q): %v, want a refusal naming the version rule", v, err)
		}
	}
}

// At a release, the helpers it carries are what its sources build: a
// release made from other sources, or edited by hand, fails here. Outside
// a release there is nothing to compare.
func TestReleaseMatchesSources(t *testing.T) {
	root := filepath.Join("..", "..")
	v, err := os.ReadFile(filepath.Join(root, Dir, versionFile))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("not a release: main carries no lean helper (make release does)")
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain to rebuild the helpers with")
	}
	built, err := Files(root, strings.TrimSpace(string(v)))
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range Arches {
		name := helperFile(arch)
		have, err := os.ReadFile(filepath.Join(root, Dir, name))
		if err != nil {
			t.Fatalf("release %s: %v", v, err)
		}
		var in, want bytes.Buffer
		if err := Write(&in, have); err != nil {
			t.Fatal(err)
		}
		Write(&want, built[name])
		if bytes.Equal(in.Bytes(), want.Bytes()) {
			continue
		}
		if bi, err := buildinfo.Read(bytes.NewReader(in.Bytes())); err == nil && bi.GoVersion != runtime.Version() {
			t.Skipf("%s was built with %s, this is %s: rebuild with that toolchain to compare", name, bi.GoVersion, runtime.Version())
		}
		t.Errorf("%s is not what the release's sources build (%d bytes, rebuilt %d)", name, in.Len(), want.Len())
	}
}
