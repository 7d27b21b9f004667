package leanbuild

import (
	"debug/buildinfo"
	"debug/elf"
	"path/filepath"
	"slices"
	"testing"
)

func TestArgs(t *testing.T) {
	got := Options{Reproducible: true}.Args("/o", "-tags", "x", "./p")
	want := []string{"build", "-trimpath", "-ldflags=-s -w", "-buildvcs=false", "-o", "/o", "-tags", "x", "./p"}
	if !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	env := Options{GOARCH: "arm64"}.Env()
	if !slices.Contains(env, "CGO_ENABLED=0") || env[len(env)-1] != "GOARCH=arm64" {
		t.Errorf("Env ends %q", env[len(env)-3:])
	}
}

// The lean helper as the module builds it is static, stripped and
// trimmed, for the host and for arm64 alike, and a reproducible build
// carries no VCS stamp where a plain one does. GOFLAGS asks for stamping
// (a machine's go env may turn it off), so that the plain build is the
// control: in a git checkout it is stamped.
func TestHelperIsLean(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the lean helper twice")
	}
	t.Setenv("GOFLAGS", "-buildvcs=auto")
	stamped := map[bool]bool{}
	for _, o := range []Options{{}, {GOARCH: "arm64", Reproducible: true}} {
		bin := filepath.Join(t.TempDir(), "helper")
		if err := Helper(filepath.Join("..", ".."), bin, o); err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%+v: dynamically linked", o)
			}
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%+v: not stripped (.symtab)", o)
		}
		f.Close()
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]string{}
		for _, s := range info.Settings {
			set[s.Key] = s.Value
		}
		arch := o.arch()
		if set["CGO_ENABLED"] != "0" || set["-trimpath"] != "true" || set["GOOS"] != "linux" || set["GOARCH"] != arch {
			t.Errorf("%+v: build settings %v", o, set)
		}
		_, stamped[o.Reproducible] = set["vcs.revision"]
	}
	if stamped[true] {
		t.Error("the reproducible build carries a vcs.revision")
	}
	if !stamped[false] {
		t.Log("the plain build carries no vcs.revision either (not a git checkout?): the reproducible one's lack of it proves nothing here")
	}
}
