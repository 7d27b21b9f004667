// Package vmlinux unpacks the uncompressed kernel (an ELF file, vmlinux)
// that an x86 bzImage carries, and checks that it has a PVH entry point.
//
// Why: under QEMU's TCG every instruction is emulated, and a bzImage spends
// about two seconds of a boot decompressing itself. QEMU boots an ELF
// kernel that has a PVH entry (the Xen note XEN_ELFNOTE_PHYS32_ENTRY,
// present when the kernel is built with CONFIG_PVH, as distribution kernels
// are) directly in 32-bit protected mode, so decompressing once on the host,
// natively, takes that time off every boot. The kernel that runs is the
// same code: only the loader in front of it is skipped.
//
// The layout is the boot protocol's (Documentation/arch/x86/boot.rst): the
// setup header gives the number of setup sectors and, from protocol 2.08,
// the offset and length of the compressed payload in the protected-mode
// part. The payload's first bytes say its format; the kernel's build
// appends the uncompressed size (32 bits, little endian) to every format
// but gzip, whose own trailer has it.
package vmlinux

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// MaxSize bounds the uncompressed kernel: a vmlinux without debug
// information is tens of MiB; anything claiming more is not a kernel.
const MaxSize = 512 << 20

// limit is MaxSize, smaller in the fuzz test.
var limit int64 = MaxSize

// ErrNoPayload marks an image that is not a bzImage with a payload this
// package can find (boot protocol before 2.08, or a damaged header).
var ErrNoPayload = errors.New("no compressed kernel payload in the image")

// ErrNoPVH marks a kernel without a PVH entry point (built without
// CONFIG_PVH): it can only boot through its bzImage.
var ErrNoPVH = errors.New("the kernel has no PVH entry point (CONFIG_PVH is off)")

// ErrUnsupported marks a payload format this package cannot decompress.
var ErrUnsupported = errors.New("unsupported payload compression")

// Payload locates the compressed kernel in a bzImage: its offset and length
// in the file.
func Payload(img io.ReaderAt) (off, n int64, err error) {
	hdr := make([]byte, 0x250)
	if _, err := img.ReadAt(hdr, 0); err != nil {
		return 0, 0, fmt.Errorf("%w: too short for a setup header", ErrNoPayload)
	}
	le := binary.LittleEndian
	if le.Uint16(hdr[0x1fe:]) != 0xaa55 || string(hdr[0x202:0x206]) != "HdrS" {
		return 0, 0, fmt.Errorf("%w: no bzImage setup header", ErrNoPayload)
	}
	if proto := le.Uint16(hdr[0x206:]); proto < 0x0208 {
		return 0, 0, fmt.Errorf("%w: boot protocol %#x does not say where it is (2.08 or later does)", ErrNoPayload, proto)
	}
	setup := int64(hdr[0x1f1])
	if setup == 0 {
		setup = 4 // the boot protocol's default
	}
	off = (setup+1)*512 + int64(le.Uint32(hdr[0x248:]))
	n = int64(le.Uint32(hdr[0x24c:]))
	if n < 8 {
		return 0, 0, fmt.Errorf("%w: payload length %d", ErrNoPayload, n)
	}
	return off, n, nil
}

// Format names the compression of a payload from its first bytes, "" when
// it is not one the kernel build uses.
func Format(head []byte) string {
	if f := lookup(head); f != nil {
		return f.name
	}
	return ""
}

func lookup(head []byte) *format {
	for i := range formats {
		if bytes.HasPrefix(head, formats[i].magic) {
			return &formats[i]
		}
	}
	return nil
}

type format struct {
	name  string
	magic []byte
	// sized is set when the build appended the uncompressed size.
	sized bool
	open  func(io.Reader) (io.Reader, func(), error)
}

func plain(open func(io.Reader) (io.Reader, error)) func(io.Reader) (io.Reader, func(), error) {
	return func(r io.Reader) (io.Reader, func(), error) {
		d, err := open(r)
		return d, func() {}, err
	}
}

var formats = []format{
	{"gzip", []byte{0x1f, 0x8b}, false, plain(func(r io.Reader) (io.Reader, error) {
		zr, err := gzip.NewReader(r)
		if err == nil {
			zr.Multistream(false)
		}
		return zr, err
	})},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, true, func(r io.Reader) (io.Reader, func(), error) {
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, func() {}, err
		}
		return d, d.Close, nil
	}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}, true, plain(func(r io.Reader) (io.Reader, error) {
		return lz4.NewReader(r), nil
	})},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, true, plain(func(r io.Reader) (io.Reader, error) {
		return xz.NewReader(r)
	})},
	{"bzip2", []byte("BZh"), true, plain(func(r io.Reader) (io.Reader, error) {
		return bzip2.NewReader(r), nil
	})},
	// lzma-alone streams start with their properties byte: 0x5d for the
	// lc=3 lp=0 pb=2 every kernel build uses.
	{"lzma", []byte{0x5d, 0x00, 0x00}, true, plain(func(r io.Reader) (io.Reader, error) {
		return lzma.NewReader(r)
	})},
	// lzo is a kernel choice too, with no decoder here: such kernels boot
	// their bzImage.
	{"lzo", []byte{0x89, 'L', 'Z', 'O'}, true, nil},
}

// Extract decompresses the kernel that the bzImage img carries into w and
// returns the payload's format. It does not look at what it wrote (see
// PVHEntry).
func Extract(img io.ReaderAt, w io.Writer) (string, error) {
	off, n, err := Payload(img)
	if err != nil {
		return "", err
	}
	head := make([]byte, 8)
	if _, err := img.ReadAt(head, off); err != nil {
		return "", fmt.Errorf("%w: payload at %#x past the end of the image", ErrNoPayload, off)
	}
	f := lookup(head)
	switch {
	case f == nil:
		return "", fmt.Errorf("%w: payload starts % x", ErrUnsupported, head)
	case f.open == nil:
		return f.name, fmt.Errorf("%w: %s", ErrUnsupported, f.name)
	}
	want := int64(-1)
	if f.sized {
		size := make([]byte, 4)
		if _, err := img.ReadAt(size, off+n-4); err != nil {
			return f.name, fmt.Errorf("%w: payload of %d bytes at %#x past the end of the image", ErrNoPayload, n, off)
		}
		want = int64(binary.LittleEndian.Uint32(size))
		if want > limit {
			return f.name, fmt.Errorf("%w: it claims %d bytes uncompressed, more than a kernel (%d)", ErrNoPayload, want, limit)
		}
		n -= 4
	}
	d, done, err := f.open(bufio.NewReaderSize(io.NewSectionReader(img, off, n), 1<<20))
	if err != nil {
		return f.name, fmt.Errorf("%s payload: %w", f.name, err)
	}
	defer done()
	got, err := io.Copy(w, io.LimitReader(d, limit+1))
	switch {
	case err != nil:
		return f.name, fmt.Errorf("decompress the %s payload: %w", f.name, err)
	case got > limit:
		return f.name, fmt.Errorf("%w: the %s payload unpacks past %d bytes", ErrNoPayload, f.name, limit)
	case want >= 0 && got != want:
		return f.name, fmt.Errorf("%w: the %s payload unpacked to %d bytes, the image says %d", ErrNoPayload, f.name, got, want)
	}
	return f.name, nil
}

// Xen ELF note type of the 32-bit PVH entry point (xen/include/public/elfnote.h).
const noteTypePVHEntry = 18

// PVHEntry returns the physical address of the kernel's PVH entry point,
// read from its "Xen" ELF note, or ErrNoPVH.
func PVHEntry(r io.ReaderAt) (uint32, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return 0, fmt.Errorf("the payload is not an ELF kernel: %w", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return 0, fmt.Errorf("the payload is a %v %v ELF, not an x86-64 kernel", f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<20 {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return 0, fmt.Errorf("read the kernel's notes: %w", err)
		}
		if entry, ok := findNote(data, f.ByteOrder); ok {
			return entry, nil
		}
	}
	return 0, ErrNoPVH
}

// findNote walks ELF notes (namesz, descsz, type, then name and desc each
// padded to 4 bytes) for Xen's PVH entry.
func findNote(b []byte, bo binary.ByteOrder) (uint32, bool) {
	pad := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, typ := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		nlen, dlen := pad(namesz), pad(descsz)
		if nlen+dlen > uint64(len(b)) {
			return 0, false
		}
		name, desc := b[:namesz], b[nlen:nlen+uint64(descsz)]
		b = b[nlen+dlen:]
		if typ == noteTypePVHEntry && string(bytes.TrimRight(name, "\x00")) == "Xen" && len(desc) >= 4 {
			return bo.Uint32(desc), true
		}
	}
	return 0, false
}

// ExtractFile writes the kernel that the bzImage at image carries to dst and
// checks it has a PVH entry point. It returns the payload's format. On
// error dst is removed: the caller boots the bzImage instead.
func ExtractFile(image, dst string) (string, error) {
	in, err := os.Open(image)
	if err != nil {
		return "", fmt.Errorf("open kernel image: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", dst, err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	format, err := Extract(in, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = PVHEntry(out)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", dst, cerr)
	}
	if err != nil {
		os.Remove(dst)
		return format, err
	}
	return format, nil
}
