package vmlinux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/nscheck/nscheck/internal/kernelcache"
)

// kernelELF is a minimal x86-64 ELF with one PT_NOTE segment holding the
// given notes: enough for PVHEntry, which reads nothing else.
func kernelELF(notes ...[]byte) []byte {
	le := binary.LittleEndian
	body := bytes.Join(notes, nil)
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little endian, version 1
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 62)   // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehsize) // phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1) // phnum
	ph := b[ehsize:]
	le.PutUint32(ph, 4) // PT_NOTE
	le.PutUint64(ph[8:], ehsize+phsize)
	le.PutUint64(ph[32:], uint64(len(body)))
	le.PutUint64(ph[40:], uint64(len(body)))
	return append(b, body...)
}

func note(name string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	pad := func(b []byte) []byte { return append(b, make([]byte, (4-len(b)%4)%4)...) }
	n := append([]byte(name), 0)
	b := make([]byte, 12)
	le.PutUint32(b, uint32(len(n)))
	le.PutUint32(b[4:], uint32(len(desc)))
	le.PutUint32(b[8:], typ)
	return append(append(b, pad(n)...), pad(desc)...)
}

var pvhNote = note("Xen", noteTypePVHEntry, []byte{0x30, 0x0a, 0x00, 0x01})

// bzImage wraps payload in a setup header as the kernel's build lays it
// out: setup sectors, then the protected-mode part with the payload at
// payload_offset. sized appends the uncompressed size as the build does for
// every format but gzip.
func bzImage(proto uint16, payload []byte, sized bool, plainLen int) []byte {
	le := binary.LittleEndian
	const setupSects = 3
	img := make([]byte, (setupSects+1)*512+0x100)
	img[0x1f1] = setupSects
	le.PutUint16(img[0x1fe:], 0xaa55)
	copy(img[0x202:], "HdrS")
	le.PutUint16(img[0x206:], proto)
	if sized {
		payload = le.AppendUint32(append([]byte{}, payload...), uint32(plainLen))
	}
	le.PutUint32(img[0x248:], 0x100)
	le.PutUint32(img[0x24c:], uint32(len(payload)))
	return append(append(img, payload...), make([]byte, 64)...) // and a trailer
}

func compress(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch format {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zstd":
		w, err = zstd.NewWriter(&buf)
	case "lz4":
		zw := lz4.NewWriter(&buf)
		err = zw.Apply(lz4.LegacyOption(true))
		w = zw
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "lzma":
		w, err = lzma.NewWriter(&buf)
	case "bzip2":
		// The standard library only decodes bzip2: the fixture is
		// kernelELF(note("Linux", 1, []byte("6.x")), pvhNote)
		// compressed by bzip2(1).
		data, err := os.ReadFile(filepath.Join("testdata", "pvh.elf.bz2"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	default:
		t.Fatalf("no writer for %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractEveryFormat(t *testing.T) {
	elf := kernelELF(note("Linux", 1, []byte("6.x")), pvhNote)
	for _, format := range []string{"gzip", "zstd", "lz4", "xz", "lzma", "bzip2"} {
		t.Run(format, func(t *testing.T) {
			payload := compress(t, format, elf)
			if got := Format(payload); got != format {
				t.Fatalf("Format = %q, want %q", got, format)
			}
			img := bzImage(0x020f, payload, format != "gzip", len(elf))
			var out bytes.Buffer
			got, err := Extract(bytes.NewReader(img), &out)
			if err != nil || got != format {
				t.Fatalf("Extract = %q, %v", got, err)
			}
			if !bytes.Equal(out.Bytes(), elf) {
				t.Fatalf("unpacked %d bytes, want the %d of the kernel", out.Len(), len(elf))
			}
			entry, err := PVHEntry(bytes.NewReader(out.Bytes()))
			if err != nil || entry != 0x01000a30 {
				t.Fatalf("PVHEntry = %#x, %v; want 0x1000a30", entry, err)
			}
		})
	}
}

func TestPVHEntryMissing(t *testing.T) {
	_, err := PVHEntry(bytes.NewReader(kernelELF(note("Xen", 6, []byte("linux\x00")), note("GNU", noteTypePVHEntry, []byte{1, 2, 3, 4}))))
	if !errors.Is(err, ErrNoPVH) {
		t.Fatalf("err = %v, want ErrNoPVH", err)
	}
	if _, err := PVHEntry(strings.NewReader("not an ELF file at all, just text")); err == nil || !strings.Contains(err.Error(), "not an ELF kernel") {
		t.Fatalf("err = %v for text", err)
	}
}

func TestExtractRefusesBadImages(t *testing.T) {
	elf := kernelELF(pvhNote)
	gz := compress(t, "gzip", elf)
	zs := compress(t, "zstd", elf)
	truncated := bzImage(0x020f, zs, true, len(elf))
	truncated = truncated[:len(truncated)-64-len(zs)/2]
	cases := []struct {
		name string
		img  []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrNoPayload, "too short"},
		{"no header", make([]byte, 4096), ErrNoPayload, "no bzImage setup header"},
		{"old protocol", bzImage(0x0207, gz, false, 0), ErrNoPayload, "boot protocol 0x207"},
		{"lzo", bzImage(0x020f, []byte("\x89LZO\x00\r\n\x1a\n and the rest"), true, 10), ErrUnsupported, "lzo"},
		{"unknown", bzImage(0x020f, []byte("plain old text payload"), true, 10), ErrUnsupported, "payload starts"},
		{"size mismatch", bzImage(0x020f, zs, true, len(elf)+1), ErrNoPayload, "the image says"},
		{"bomb", bzImage(0x020f, zs, true, MaxSize+1), ErrNoPayload, "more than a kernel"},
		{"truncated", truncated, ErrNoPayload, "past the end"},
		{"corrupt", bzImage(0x020f, append(append([]byte{}, gz[:12]...), bytes.Repeat([]byte{0xff}, 40)...), false, 0), nil, "decompress the gzip payload"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Extract(bytes.NewReader(c.img), io.Discard)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

func TestExtractFileRemovesWhatItCannotBoot(t *testing.T) {
	dir := t.TempDir()
	elf := kernelELF(note("Xen", 6, []byte("linux\x00"))) // no PVH entry
	src := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(src, bzImage(0x020f, compress(t, "xz", elf), true, len(elf)), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "vmlinux")
	if _, err := ExtractFile(src, dst); !errors.Is(err, ErrNoPVH) {
		t.Fatalf("err = %v, want ErrNoPVH", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", dst, err)
	}
	if _, err := ExtractFile(filepath.Join(dir, "absent"), dst); err == nil || !strings.Contains(err.Error(), "open kernel image") {
		t.Fatalf("err = %v for a missing image", err)
	}
}

// The Debian kernels .ci/run caches (see kernelcache): real images, LZ4 (6.1) and zstd (6.12).
func TestExtractDebianKernels(t *testing.T) {
	debs := kernelcache.Debs("*")
	if len(debs) == 0 {
		msg := "no Debian kernels in " + kernelcache.Dir() + ": run .ci/run (it downloads them)"
		if os.Getenv("NSCHECK_REQUIRE_VM") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (apt-get install dpkg)")
	}
	for _, deb := range debs {
		t.Run(filepath.Base(deb), func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb -x: %v: %s", err, out)
			}
			images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
			if len(images) != 1 {
				t.Fatalf("images: %v", images)
			}
			format, err := ExtractFile(images[0], filepath.Join(dir, "vmlinux"))
			if err != nil {
				t.Fatal(err)
			}
			if format != "lz4" && format != "zstd" {
				t.Errorf("format %q: Debian's cloud kernels use lz4 (6.1) or zstd (6.12)", format)
			}
		})
	}
}

func FuzzExtract(f *testing.F) {
	elf := kernelELF(pvhNote)
	f.Add(bzImage(0x020f, elf, true, len(elf)))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(elf)
	zw.Close()
	f.Add(bzImage(0x020f, gz.Bytes(), false, 0))
	f.Add(elf)
	limit = 1 << 20 // a bomb must not make a run slow
	f.Fuzz(func(t *testing.T, img []byte) {
		var out bytes.Buffer
		if _, err := Extract(bytes.NewReader(img), &out); err == nil {
			PVHEntry(bytes.NewReader(out.Bytes()))
		}
		PVHEntry(bytes.NewReader(img))
	})
}
