package vm

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is a kernel to boot: its image and the modules the catalog needs.
type Kernel struct {
	// Source is what the user named (an image, a .deb, a directory).
	Source string
	// Image is the bzImage to boot.
	Image string
	// Release is the kernel release read from the image's header.
	Release string
	// Modules are the module files from the same kernel (possibly
	// compressed: veth.ko.xz), by module name.
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

// Modules the catalog needs when the kernel builds them as modules (=m):
// veth for the network properties. A module that is built in has no file
// and is simply absent.
var WantModules = []string{"veth"}

// ErrNotKernel marks an input that is not a bootable x86 kernel.
var ErrNotKernel = errors.New("not a kernel image (bzImage), a kernel .deb or a directory holding boot/vmlinuz-*")

// OpenKernel resolves src: a bzImage (vmlinuz), a Debian kernel package
// (.deb; read with dpkg-deb) or the directory such a package unpacks to.
// Modules are looked up in the package, in the directory's lib/modules/<release>,
// or for a bare image in ../lib/modules/<release> beside it (/boot/vmlinuz-X
// finds /lib/modules/X). Unpacked files go to a directory under tmpDir that
// Close removes.
func OpenKernel(src, tmpDir string) (*Kernel, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", src, err)
	}
	if st.IsDir() {
		return openDir(src)
	}
	head := make([]byte, 8)
	if f, err := os.Open(src); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", src, err)
	} else {
		n, _ := io.ReadFull(f, head)
		head = head[:n]
		f.Close()
	}
	if string(head) == "!<arch>\n" {
		return openDeb(src, tmpDir)
	}
	rel, err := ImageRelease(src)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Source: src, Image: src, Release: rel}
	k.Modules = findModules(filepath.Join(filepath.Dir(src), "..", "lib", "modules", rel))
	return k, nil
}

// openDir finds boot/vmlinuz-* and lib/modules/<release> in an unpacked
// kernel package.
func openDir(dir string) (*Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	switch len(images) {
	case 0:
		return nil, fmt.Errorf("kernel %s: %w (no boot/vmlinuz-* in it)", dir, ErrNotKernel)
	case 1:
	default:
		return nil, fmt.Errorf("kernel %s: several images in boot/ (%s): name one", dir, strings.Join(images, ", "))
	}
	rel, err := ImageRelease(images[0])
	if err != nil {
		return nil, err
	}
	k := &Kernel{Source: dir, Image: images[0], Release: rel}
	for _, lib := range []string{"lib", "usr/lib"} {
		if m := findModules(filepath.Join(dir, lib, "modules", rel)); len(m) > 0 {
			k.Modules = m
			break
		}
	}
	return k, nil
}

// openDeb unpacks only the image and the wanted modules from a kernel
// package: dpkg-deb turns the package into a tar stream (it knows every
// compression Debian uses) and the stream is filtered here.
func openDeb(deb, tmpDir string) (*Kernel, error) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return nil, fmt.Errorf("kernel %s: reading a .deb needs dpkg-deb (apt-get install dpkg)", deb)
	}
	tmp, err := os.MkdirTemp(tmpDir, "kernel-")
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", deb, err)
	}
	k := &Kernel{Source: deb, tmp: tmp, Modules: map[string]string{}}
	if err := k.unpackDeb(deb); err != nil {
		k.Close()
		return nil, fmt.Errorf("kernel %s: %w", deb, err)
	}
	return k, nil
}

func (k *Kernel) unpackDeb(deb string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	scanErr := k.scanTar(out)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if scanErr != nil {
		return scanErr
	}
	if k.Image == "" {
		return fmt.Errorf("%w (the package has no boot/vmlinuz-*)", ErrNotKernel)
	}
	rel, err := ImageRelease(k.Image)
	if err != nil {
		return err
	}
	k.Release = rel
	return nil
}

func (k *Kernel) scanTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read package contents: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		var dst, mod string
		switch {
		case strings.HasPrefix(name, "boot/vmlinuz-"):
			if k.Image != "" {
				return fmt.Errorf("several images in the package")
			}
			dst = filepath.Join(k.tmp, "vmlinuz")
			k.Image = dst
		case strings.Contains(name, "lib/modules/"):
			if mod = moduleName(path.Base(name)); mod == "" {
				continue
			}
			dst = filepath.Join(k.tmp, path.Base(name))
		default:
			continue
		}
		if err := writeFile(dst, tr); err != nil {
			return err
		}
		if mod != "" {
			k.Modules[mod] = dst
		}
	}
}

func writeFile(dst string, r io.Reader) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Close()
}

// moduleName is the wanted module a file name is ("veth" for veth.ko or
// veth.ko.xz), or "".
func moduleName(base string) string {
	for _, m := range WantModules {
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if base == m+ext {
				return m
			}
		}
	}
	return ""
}

// findModules walks a /lib/modules/<release> tree for the wanted modules.
func findModules(dir string) map[string]string {
	found := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if m := moduleName(d.Name()); m != "" {
				found[m] = p
			}
		}
		return nil
	})
	return found
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
