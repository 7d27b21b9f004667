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
	return writeDir(t, kernelFiles(t, "boot/vmlinuz-"+fixRelease, "lib/modules/"+fixRelease, ".xz"))
}
