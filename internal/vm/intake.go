package vm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	rpmutils "github.com/sassoftware/go-rpmutils"
	"github.com/ulikunitz/xz"
)

// A tree is a kernel package or directory read as a stream of its regular
// files, each named by its path inside the tree ("boot/vmlinuz-6.1.0-9-amd64",
// "usr/lib/modules/7.2.13+deb14-cloud-amd64/kernel/drivers/net/veth.ko.xz").
// Packages are read once from start to end: nothing of them is unpacked
// but the image and the modules the guest needs.
type tree struct {
	path string
	// bare: path is a kernel image itself, not a tree.
	bare bool
	walk func(visit func(name string, r io.Reader) error) error
}

// Package magics (the first bytes of the file).
var (
	debMagic  = []byte("!<arch>\n")
	rpmMagic  = []byte{0xed, 0xab, 0xee, 0xdb}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// openTree tells what p is by its content: a directory, a .deb, an .rpm,
// an Arch package (a tar compressed with zstd or xz), or else a bare image.
func openTree(p string) (tree, error) {
	st, err := os.Stat(p)
	if err != nil {
		return tree{}, err
	}
	if st.IsDir() {
		return tree{path: p, walk: dirWalker(p, "boot", "lib/modules", "usr/lib/modules")}, nil
	}
	head := make([]byte, 8)
	f, err := os.Open(p)
	if err != nil {
		return tree{}, err
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	t := tree{path: p}
	switch {
	case bytes.HasPrefix(head, debMagic):
		t.walk = debWalker(p)
	case bytes.HasPrefix(head, rpmMagic):
		t.walk = fileWalker(p, walkRPM)
	case bytes.HasPrefix(head, zstdMagic):
		t.walk = fileWalker(p, func(r io.Reader, visit func(string, io.Reader) error) error {
			zr, err := zstd.NewReader(r)
			if err != nil {
				return fmt.Errorf("zstd: %w", err)
			}
			defer zr.Close()
			return walkTar(zr, visit)
		})
	case bytes.HasPrefix(head, xzMagic):
		t.walk = fileWalker(p, func(r io.Reader, visit func(string, io.Reader) error) error {
			xr, err := xz.NewReader(bufio.NewReader(r))
			if err != nil {
				return fmt.Errorf("xz: %w", err)
			}
			return walkTar(xr, visit)
		})
	default:
		t.bare = true
	}
	return t, nil
}

// dirWalker visits the regular files under the given parts of root.
func dirWalker(root string, parts ...string) func(func(string, io.Reader) error) error {
	return func(visit func(string, io.Reader) error) error {
		for _, part := range parts {
			top := filepath.Join(root, part)
			if _, err := os.Stat(top); err != nil {
				continue
			}
			err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return nil
				}
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return nil
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				return visit(filepath.ToSlash(rel), f)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func fileWalker(p string, read func(io.Reader, func(string, io.Reader) error) error) func(func(string, io.Reader) error) error {
	return func(visit func(string, io.Reader) error) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return read(bufio.NewReaderSize(f, 1<<20), visit)
	}
}

// debWalker reads a .deb's files through dpkg-deb, which knows every
// compression Debian and Ubuntu use for data.tar.
func debWalker(deb string) func(func(string, io.Reader) error) error {
	return func(visit func(string, io.Reader) error) error {
		if _, err := exec.LookPath("dpkg-deb"); err != nil {
			return errors.New("reading a .deb needs dpkg-deb (apt-get install dpkg)")
		}
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
		walkErr := walkTar(out, visit)
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("dpkg-deb --fsys-tarfile: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return walkErr
	}
}

// walkTar visits the regular files of a tar stream.
func walkTar(r io.Reader, visit func(string, io.Reader) error) error {
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
		if err := visit(cleanName(h.Name), tr); err != nil {
			return err
		}
	}
}

// walkRPM visits the regular files of an RPM's payload, read with
// go-rpmutils (the lead, the signature and main headers, then the payload
// in whichever compression the header names).
func walkRPM(r io.Reader, visit func(string, io.Reader) error) error {
	rpm, err := rpmutils.ReadRpm(r)
	if err != nil {
		return fmt.Errorf("read rpm header: %w", err)
	}
	pr, err := rpm.PayloadReaderExtended()
	if err != nil {
		return fmt.Errorf("read rpm payload: %w", err)
	}
	for {
		fi, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read rpm payload: %w", err)
		}
		if pr.IsLink() || fi.Mode()&0o170000 != 0o100000 {
			continue
		}
		if err := visit(cleanName(fi.Name()), pr); err != nil {
			return err
		}
	}
}

func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// scan collects, over the trees of one kernel, the image candidates and
// the wanted modules of every release the trees have.
type scan struct {
	k    *Kernel
	want map[string]bool
	// images found in the main tree, with the release their path names.
	images []image
	// got[release][module] is the unpacked (uncompressed) module file.
	got map[string]map[string]string
	// deps[release][module] from modules.dep, when a tree ships one.
	deps map[string]map[string][]string
	// releases[tree] are the releases whose modules the tree holds.
	releases map[string]map[string]bool
	// config[release] is the kernel's configuration, when shipped.
	config map[string]map[string]string
	// progress: a pass unpacked a module it had not.
	progress bool
}

type image struct{ file, release string }

// modulePath splits "[usr/]lib/modules/<release>/<rest>".
func modulePath(name string) (release, rest string, ok bool) {
	name = strings.TrimPrefix(name, "usr/")
	after, ok := strings.CutPrefix(name, "lib/modules/")
	if !ok {
		return "", "", false
	}
	release, rest, ok = strings.Cut(after, "/")
	return release, rest, ok && release != "" && rest != ""
}

// moduleFile is the module name of a file name ("veth" for veth.ko.xz;
// dashes are underscores, as the kernel names modules), or "".
func moduleFile(base string) string {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if m, ok := strings.CutSuffix(base, ext); ok && m != "" {
			return strings.ReplaceAll(m, "-", "_")
		}
	}
	return ""
}

// run reads one tree; main is the tree of --kernel, whose image counts.
func (s *scan) run(t tree, main bool) error {
	if s.got == nil {
		s.got, s.deps, s.releases, s.config = map[string]map[string]string{}, map[string]map[string][]string{}, map[string]map[string]bool{}, map[string]map[string]string{}
	}
	if s.releases[t.path] == nil {
		s.releases[t.path] = map[string]bool{}
	}
	err := t.walk(func(name string, r io.Reader) error { return s.file(t, main, name, r) })
	if err != nil {
		return fmt.Errorf("%s: %w", t.path, err)
	}
	return nil
}

func (s *scan) file(t tree, main bool, name string, r io.Reader) error {
	if rel, ok := strings.CutPrefix(name, "boot/vmlinuz-"); ok && main && !strings.Contains(rel, "/") {
		return s.addImage(r, rel)
	}
	if rel, ok := strings.CutPrefix(name, "boot/config-"); ok && !strings.Contains(rel, "/") {
		s.config[rel] = parseConfig(r)
		return nil
	}
	rel, rest, ok := modulePath(name)
	if !ok {
		return nil
	}
	switch {
	case rest == "vmlinuz" || rest == "Image":
		if main {
			return s.addImage(r, rel)
		}
	case rest == "config":
		s.config[rel] = parseConfig(r)
	case rest == "modules.dep":
		s.deps[rel] = parseModulesDep(r)
	default:
		mod := moduleFile(path.Base(rest))
		if mod == "" {
			return nil
		}
		s.releases[t.path][rel] = true
		if !s.want[mod] || s.got[rel][mod] != "" {
			return nil
		}
		dir := filepath.Join(s.k.tmp, "modules", rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dst := filepath.Join(dir, mod+".ko")
		if err := writeModule(dst, path.Base(rest), r); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if s.got[rel] == nil {
			s.got[rel] = map[string]string{}
		}
		s.got[rel][mod], s.progress = dst, true
	}
	return nil
}

func (s *scan) addImage(r io.Reader, release string) error {
	if len(s.images) > 0 && s.images[0].release == release {
		return nil // the same kernel twice (a Fedora package has both places)
	}
	dst := filepath.Join(s.k.tmp, fmt.Sprintf("vmlinuz-%d", len(s.images)))
	if err := writeFile(dst, r); err != nil {
		return err
	}
	s.images = append(s.images, image{dst, release})
	return nil
}

// pickImage sets the kernel's image from the main tree's one image.
func (s *scan) pickImage() error {
	switch len(s.images) {
	case 0:
		return ErrNotKernel
	case 1:
	default:
		var rels []string
		for _, im := range s.images {
			rels = append(rels, im.release)
		}
		return fmt.Errorf("several kernels in it (%s): name one", strings.Join(rels, ", "))
	}
	return s.k.setImage(s.images[0].file, s.images[0].release)
}

// closure is the kernel's modules: the wanted ones its release has and,
// through modules.dep or each module's own .modinfo "depends=", what they
// need. Dependencies not unpacked yet are added to want and listed in
// missing (with the module that needs them).
func (s *scan) closure(roots []string) (mods map[string]string, missing map[string]string, err error) {
	rel := s.k.Release
	mods, missing = map[string]string{}, map[string]string{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		mod := queue[0]
		queue = queue[1:]
		file := s.got[rel][mod]
		if file == "" || mods[mod] != "" {
			continue
		}
		mods[mod] = file
		deps, ok := s.deps[rel][mod]
		if !ok {
			if deps, err = modinfoDepends(file); err != nil {
				return nil, nil, fmt.Errorf("module %s: %w", mod, err)
			}
		}
		for _, d := range deps {
			if s.got[rel][d] == "" {
				s.want[d] = true
				missing[d] = mod
			}
			queue = append(queue, d)
		}
	}
	return mods, missing, nil
}

// writeModule writes a module uncompressed: kernels before 6.x (5.10) cannot
// decompress a module themselves, and the initramfs is compressed anyway.
func writeModule(dst, name string, r io.Reader) error {
	switch {
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(r)
		if err != nil {
			return fmt.Errorf("xz: %w", err)
		}
		return writeFile(dst, xr)
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(r)
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		return writeFile(dst, zr)
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		return writeFile(dst, gr)
	}
	return writeFile(dst, r)
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

// parseModulesDep reads modules.dep ("kernel/a/b.ko.xz: kernel/c.ko.xz
// kernel/d.ko.xz") into module name -> the names it depends on.
func parseModulesDep(r io.Reader) map[string][]string {
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, list, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := moduleFile(path.Base(strings.TrimSpace(mod)))
		if name == "" {
			continue
		}
		var ds []string
		for _, d := range strings.Fields(list) {
			if n := moduleFile(path.Base(d)); n != "" {
				ds = append(ds, n)
			}
		}
		deps[name] = ds
	}
	return deps
}

// parseConfig reads the "CONFIG_X=y|m" lines of a kernel configuration.
func parseConfig(r io.Reader) map[string]string {
	c := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			c[k] = v
		}
	}
	return c
}

// modinfoDepends reads the "depends=" entry of a module's .modinfo section
// (NUL-separated key=value strings that modpost writes).
func modinfoDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	return parseModinfoDepends(data), nil
}

func parseModinfoDepends(data []byte) []string {
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps
		}
	}
	return nil
}
