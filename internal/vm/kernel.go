package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Kernel is a kernel to boot: its image and the modules the catalog needs,
// unpacked from whatever the user named (see OpenKernel).
type Kernel struct {
	// Source is what the user named (an image, a package, a directory).
	Source string
	// Image is the file QEMU boots: a bzImage, or an arm64 Image
	// (decompressed here when the package ships it compressed).
	Image string
	// Release is the kernel release: from a bzImage's setup header, else
	// from where the package keeps the image (boot/vmlinuz-<release>,
	// usr/lib/modules/<release>/vmlinuz).
	Release string
	// Arch is the image's architecture.
	Arch Arch
	// Modules are uncompressed module files of the same release, by module
	// name: WantModules and what they depend on.
	Modules map[string]string
	tmp     string
}

// Close removes what opening the kernel unpacked.
func (k *Kernel) Close() error {
	if k.tmp == "" {
		return nil
	}
	return os.RemoveAll(k.tmp)
}

// ModuleNames lists k's modules, sorted.
func (k *Kernel) ModuleNames() []string {
	names := make([]string, 0, len(k.Modules))
	for n := range k.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WantModules are the modules the catalog needs when the kernel builds
// them as modules (=m): veth for the network properties, and on arm64
// virtio_console for the report channel (see ReportPort). A module that is
// built in has no file and is simply absent.
func WantModules(a Arch) []string {
	if a == ARM64 {
		return []string{"veth", "virtio_console"}
	}
	return []string{"veth"}
}

// ErrNotKernel marks an input that holds no bootable kernel.
var ErrNotKernel = errors.New("no kernel image in it (want a bzImage or arm64 Image, a .deb, .rpm or .pkg.tar.zst kernel package, or a directory with boot/vmlinuz-<release> or usr/lib/modules/<release>/vmlinuz)")

// OpenKernel resolves src. src.Kernel is a bzImage or an arm64 Image, a
// kernel package (Debian/Ubuntu .deb, Fedora/RHEL/openSUSE .rpm, Arch
// .pkg.tar.zst) or a directory in either layout: boot/vmlinuz-<release>
// beside lib/modules/<release>, or usr/lib/modules/<release>/vmlinuz.
// src.Modules are more packages or directories with that release's
// modules (Debian's linux-modules-*, Fedora's kernel-modules, Ubuntu's
// linux-modules-extra-*). Modules are taken from every source, of the
// image's release only; a bare image finds them in ../lib/modules/<release>
// beside it (/boot/vmlinuz-X finds /lib/modules/X). Unpacked files go to a
// directory under tmpDir that Close removes.
func OpenKernel(src Source, tmpDir string) (*Kernel, error) {
	tmp, err := os.MkdirTemp(tmpDir, "kernel-")
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", src.Kernel, err)
	}
	k := &Kernel{Source: src.Kernel, tmp: tmp, Modules: map[string]string{}}
	if err := k.open(src); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *Kernel) open(src Source) error {
	main, err := openTree(src.Kernel)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", src.Kernel, err)
	}
	var trees []tree
	if main.bare {
		if err := k.setImage(src.Kernel, ""); err != nil {
			return fmt.Errorf("kernel %s: %w", src.Kernel, err)
		}
		// A bare image: its modules may be installed beside it.
		root := filepath.Join(filepath.Dir(src.Kernel), "..")
		sub := "lib/modules/" + k.Release
		if st, err := os.Stat(filepath.Join(root, sub)); err == nil && st.IsDir() {
			trees = append(trees, tree{path: root, walk: dirWalker(root, sub)})
		}
	} else {
		trees = append(trees, main)
	}
	for _, m := range src.Modules {
		t, err := openTree(m)
		if err != nil {
			return fmt.Errorf("modules %s: %w", m, err)
		}
		if t.bare {
			return fmt.Errorf("modules %s: a kernel image, not a package or directory of modules", m)
		}
		trees = append(trees, t)
	}
	// One pass over every tree unpacks the image and the wanted modules of
	// every release (the image's release is known only once it is found).
	sc := &scan{k: k, want: map[string]bool{}}
	for _, a := range []Arch{AMD64, ARM64} {
		for _, m := range WantModules(a) {
			sc.want[m] = true
		}
	}
	for i, t := range trees {
		if err := sc.run(t, i == 0 && !main.bare); err != nil {
			return fmt.Errorf("kernel %s: %w", src.Kernel, err)
		}
	}
	if !main.bare {
		if err := sc.pickImage(); err != nil {
			return fmt.Errorf("kernel %s: %w", src.Kernel, err)
		}
	}
	for _, t := range trees[len(trees)-len(src.Modules):] {
		rels := sc.releases[t.path]
		switch {
		case len(rels) == 0:
			return fmt.Errorf("modules %s: holds no kernel modules", t.path)
		case !rels[k.Release]:
			return fmt.Errorf("modules %s: modules of release %s, but the kernel is %s", t.path, strings.Join(sortedKeys(rels), ", "), k.Release)
		}
	}
	// A package of the image alone (Debian's linux-binary-*, Fedora's
	// kernel-core has some): booted without its modules the network
	// properties could not create a veth.
	if !main.bare && len(src.Modules) == 0 {
		has := false
		for _, t := range trees {
			has = has || sc.releases[t.path][k.Release]
		}
		if !has {
			return fmt.Errorf("kernel %s: the package has the image of %s but none of its modules: name the package that has them with --modules (Debian: linux-modules-%s, Fedora: kernel-modules)",
				src.Kernel, k.Release, k.Release)
		}
	}
	// The wanted modules and what they depend on: the trees are read again
	// only for a dependency that the first pass did not know to unpack.
	for {
		mods, missing, err := sc.closure(WantModules(k.Arch))
		if err != nil {
			return fmt.Errorf("kernel %s: %w", src.Kernel, err)
		}
		if len(missing) == 0 {
			k.Modules = mods
			break
		}
		sc.progress = false
		for _, t := range trees {
			if err := sc.run(t, false); err != nil {
				return fmt.Errorf("kernel %s: %w", src.Kernel, err)
			}
		}
		if !sc.progress {
			var what []string
			for _, d := range sortedKeys(missing) {
				what = append(what, missing[d]+" needs "+d)
			}
			return fmt.Errorf("kernel %s: module %s, which no package given holds", src.Kernel, strings.Join(what, ", "))
		}
	}
	if cfg := sc.config[k.Release]; cfg != nil {
		for _, m := range WantModules(k.Arch) {
			if _, ok := k.Modules[m]; !ok && cfg[configName(m)] == "m" {
				return fmt.Errorf("kernel %s: %s builds %s as a module and no package given holds it: add --modules PACKAGE with its modules (linux-modules-%s)",
					src.Kernel, k.Release, m, k.Release)
			}
		}
	}
	return nil
}

// configName is the Kconfig symbol of a wanted module.
func configName(module string) string {
	return map[string]string{"veth": "CONFIG_VETH", "virtio_console": "CONFIG_VIRTIO_CONSOLE"}[module]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// setImage makes the file at path the kernel's image: it finds the
// architecture, decompresses an arm64 Image, and takes the release from a
// bzImage's header, else from pathRelease (where the package put it), else
// from the "Linux version" banner inside.
func (k *Kernel) setImage(path, pathRelease string) error {
	img, arch, err := identifyImage(path, filepath.Join(k.tmp, "Image"))
	if err != nil {
		return err
	}
	k.Image, k.Arch = img, arch
	if arch == AMD64 {
		rel, err := ImageRelease(img)
		if err != nil {
			return err
		}
		k.Release = rel
		return nil
	}
	if pathRelease != "" {
		k.Release = pathRelease
		return nil
	}
	rel, err := bannerRelease(img)
	if err != nil {
		return err
	}
	k.Release = rel
	return nil
}

// ImageRelease reads the kernel release from an x86 bzImage's setup header
// (Documentation/arch/x86/boot.rst): the boot flag 0xAA55 at 0x1FE, "HdrS"
// at 0x202, the protocol version at 0x206, and at 0x20E the offset (from
// 0x200) of a NUL-terminated version string whose first word is the release.
func ImageRelease(image string) (string, error) {
	f, err := os.Open(image)
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", image, err)
	}
	defer f.Close()
	rel, err := ParseSetupHeader(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", image, err)
	}
	return rel, nil
}

// ParseSetupHeader returns the release named by a bzImage's setup header.
func ParseSetupHeader(r io.ReaderAt) (string, error) {
	hdr := make([]byte, 0x210)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("%w: too short for a setup header", ErrNotKernel)
	}
	le := binary.LittleEndian
	if le.Uint16(hdr[0x1fe:]) != 0xaa55 || string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("%w: no bzImage setup header", ErrNotKernel)
	}
	if proto := le.Uint16(hdr[0x206:]); proto < 0x0200 {
		return "", fmt.Errorf("%w: boot protocol %#x is too old", ErrNotKernel, proto)
	}
	off := int64(le.Uint16(hdr[0x20e:])) + 0x200
	ver := make([]byte, 256)
	n, err := r.ReadAt(ver, off)
	if n == 0 {
		return "", fmt.Errorf("%w: version string at %#x unreadable: %v", ErrNotKernel, off, err)
	}
	s, _, found := strings.Cut(string(ver[:n]), "\x00")
	rel, _, _ := strings.Cut(s, " ")
	if !found || rel == "" || !printable(rel) {
		return "", fmt.Errorf("%w: no version string at %#x", ErrNotKernel, off)
	}
	return rel, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '/' {
			return false
		}
	}
	return true
}

// bannerRelease finds "Linux version <release> " in an uncompressed image.
func bannerRelease(image string) (string, error) {
	data, err := os.ReadFile(image)
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", image, err)
	}
	return parseBanner(data)
}

func parseBanner(data []byte) (string, error) {
	const banner = "Linux version "
	for rest := data; ; {
		i := bytes.Index(rest, []byte(banner))
		if i < 0 {
			return "", fmt.Errorf("%w: no \"Linux version\" banner in the image", ErrNotKernel)
		}
		rest = rest[i+len(banner):]
		end := bytes.IndexByte(rest, ' ')
		if end > 0 && end < 128 && printable(string(rest[:end])) && rest[0] >= '0' && rest[0] <= '9' {
			return string(rest[:end]), nil
		}
	}
}

// identifyImage tells a bzImage (x86) from an arm64 Image, which
// packages ship compressed: gzipped (Debian's vmlinuz) or as an EFI zboot
// image (a PE stub that carries the compressed Image). A compressed Image
// is unpacked to dst, which is then the image to boot.
func identifyImage(file, dst string) (string, Arch, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	head := make([]byte, 0x210)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case isBzImage(head):
		return file, AMD64, nil
	case isARM64Image(head):
		return file, ARM64, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", "", err
		}
		gr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return "", "", fmt.Errorf("%w: gzip: %v", ErrNotKernel, err)
		}
		if err := writeFile(dst, gr); err != nil {
			return "", "", err
		}
	case len(head) >= 32 && string(head[0:2]) == "MZ" && string(head[4:8]) == "zimg":
		le := binary.LittleEndian
		off, size := int64(le.Uint32(head[8:])), int64(le.Uint32(head[12:]))
		comp := string(bytes.TrimRight(head[24:32], "\x00"))
		payload := io.NewSectionReader(f, off, size)
		var r io.Reader
		switch comp {
		case "gzip":
			gr, err := gzip.NewReader(payload)
			if err != nil {
				return "", "", fmt.Errorf("%w: zboot gzip: %v", ErrNotKernel, err)
			}
			r = gr
		case "zstd", "zstd22":
			zr, err := zstd.NewReader(payload)
			if err != nil {
				return "", "", fmt.Errorf("%w: zboot zstd: %v", ErrNotKernel, err)
			}
			defer zr.Close()
			r = zr
		default:
			return "", "", fmt.Errorf("%w: an EFI zboot image compressed with %q", ErrNotKernel, comp)
		}
		if err := writeFile(dst, r); err != nil {
			return "", "", err
		}
	default:
		return "", "", fmt.Errorf("%w: neither a bzImage nor an arm64 Image", ErrNotKernel)
	}
	g, err := os.Open(dst)
	if err != nil {
		return "", "", err
	}
	defer g.Close()
	n, _ = io.ReadFull(g, head)
	if !isARM64Image(head[:n]) {
		return "", "", fmt.Errorf("%w: the compressed image is not an arm64 Image", ErrNotKernel)
	}
	return dst, ARM64, nil
}

func isBzImage(h []byte) bool {
	return len(h) >= 0x206 && binary.LittleEndian.Uint16(h[0x1fe:]) == 0xaa55 && string(h[0x202:0x206]) == "HdrS"
}

// isARM64Image: the arm64 boot protocol's header has "ARM\x64" at 0x38
// (Documentation/arch/arm64/booting.rst).
func isARM64Image(h []byte) bool {
	return len(h) >= 0x3c && string(h[0x38:0x3c]) == "ARM\x64"
}
