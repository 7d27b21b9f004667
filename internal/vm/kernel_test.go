package vm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseSetupHeaderDebianFixtures(t *testing.T) {
	for file, want := range map[string]string{
		"debian-6.1.0-57-cloud-amd64.head": "6.1.0-57-cloud-amd64",
		"debian-6.12.117-cloud-amd64.head": "6.12.117+deb12-cloud-amd64",
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "bzimage", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSetupHeader(bytes.NewReader(b))
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", file, got, err, want)
		}
	}
}

func TestParseSetupHeaderRejects(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "bzimage", "debian-6.1.0-57-cloud-amd64.head"))
	if err != nil {
		t.Fatal(err)
	}
	elf := append([]byte("\x7fELF"), make([]byte, 0x300)...)
	noVersion := append([]byte{}, b[:0x4c0]...)
	badFlag := append([]byte{}, b...)
	badFlag[0x1fe] = 0
	for name, in := range map[string][]byte{"empty": nil, "elf": elf, "cut": noVersion, "flag": badFlag, "text": []byte("hello\n")} {
		if _, err := ParseSetupHeader(bytes.NewReader(in)); !errors.Is(err, ErrNotKernel) {
			t.Errorf("%s: err %v, want ErrNotKernel", name, err)
		}
	}
}

func FuzzParseSetupHeader(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("..", "..", "fixtures", "bzimage", "debian-6.12.117-cloud-amd64.head"))
	f.Add(b)
	f.Add(make([]byte, 0x210))
	f.Fuzz(func(t *testing.T, in []byte) {
		rel, err := ParseSetupHeader(bytes.NewReader(in))
		if err == nil && (rel == "" || !printable(rel)) {
			t.Fatalf("accepted release %q", rel)
		}
	})
}

// A directory laid out like an unpacked kernel package, with the real
// header as its image.
func fakeUnpacked(t *testing.T) string {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "bzimage", "debian-6.12.117-cloud-amd64.head"))
	if err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(dir, "lib", "modules", "6.12.117+deb12-cloud-amd64", "kernel", "drivers", "net")
	for _, d := range []string{filepath.Join(dir, "boot"), mods} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string][]byte{
		filepath.Join(dir, "boot", "vmlinuz-6.12.117+deb12-cloud-amd64"): b,
		filepath.Join(mods, "veth.ko.xz"):                                []byte("module"),
		filepath.Join(mods, "vxlan.ko.xz"):                               []byte("other"),
	} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenKernelDirAndImage(t *testing.T) {
	dir := fakeUnpacked(t)
	for _, src := range []string{dir, filepath.Join(dir, "boot", "vmlinuz-6.12.117+deb12-cloud-amd64")} {
		k, err := OpenKernel(src, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if k.Release != "6.12.117+deb12-cloud-amd64" || filepath.Base(k.Modules["veth"]) != "veth.ko.xz" || len(k.Modules) != 1 {
			t.Errorf("%s: %+v", src, k)
		}
	}
}

func TestOpenKernelRejects(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a kernel\n"), 0o644)
	fakeDeb := filepath.Join(dir, "x.deb")
	os.WriteFile(fakeDeb, []byte("!<arch>\ngarbage"), 0o644)
	for _, src := range []string{filepath.Join(dir, "missing"), text, dir} {
		if _, err := OpenKernel(src, dir); err == nil {
			t.Errorf("%s accepted", src)
		}
	}
	if _, err := OpenKernel(fakeDeb, dir); err == nil {
		t.Errorf("a broken .deb accepted")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "kernel-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
