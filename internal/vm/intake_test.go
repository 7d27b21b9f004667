package vm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Fixture packages are built here, in every layout nscheck reads, around
// the real setup header of a Debian bzImage and modules that are minimal
// ELF files with a .modinfo section.

const (
	fixRelease = "6.12.117+deb12-cloud-amd64"
	fixImage   = "debian-6.12.117-cloud-amd64.head"
)

func fixtureImage(t testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "bzimage", fixImage))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeModule is an ELF relocatable object whose .modinfo says depends=deps.
func fakeModule(name, deps string) []byte {
	modinfo := []byte("license=GPL\x00name=" + name + "\x00depends=" + deps + "\x00vermagic=" + fixRelease + " SMP mod_unload\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 1)  // ET_REL
	le.PutUint16(hdr[18:], 62) // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	shoff := 64 + len(modinfo) + len(shstr)
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[58:], 64)
	le.PutUint16(hdr[60:], 3)
	le.PutUint16(hdr[62:], 2)
	sh := func(name, typ uint32, off, size int) []byte {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		return s
	}
	out := append(hdr, modinfo...)
	out = append(out, shstr...)
	out = append(out, make([]byte, 64)...)
	out = append(out, sh(1, 1, 64, len(modinfo))...)
	out = append(out, sh(10, 3, 64+len(modinfo), len(shstr))...)
	return out
}

func compress(t testing.TB, ext string, data []byte) []byte {
	var b bytes.Buffer
	switch ext {
	case ".xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".zst":
		w, _ := zstd.NewWriter(&b)
		w.Write(data)
		w.Close()
	case ".gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	default:
		return data
	}
	return b.Bytes()
}

// files of a kernel in a layout: path -> content.
type files map[string][]byte

func kernelFiles(t testing.TB, imagePath, modDir, ext string) files {
	fs := files{}
	if imagePath != "" {
		fs[imagePath] = fixtureImage(t)
	}
	if modDir != "" {
		fs[modDir+"/kernel/drivers/net/veth.ko"+ext] = compress(t, ext, fakeModule("veth", "net-helper"))
		fs[modDir+"/kernel/net/net-helper.ko"+ext] = compress(t, ext, fakeModule("net_helper", ""))
		fs[modDir+"/kernel/drivers/net/vxlan.ko"+ext] = compress(t, ext, fakeModule("vxlan", ""))
	}
	return fs
}

func writeDir(t testing.TB, fs files) string {
	dir := t.TempDir()
	for p, data := range fs {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tarOf(t testing.TB, fs files) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, p := range sortedKeys(fs) {
		tw.WriteHeader(&tar.Header{Name: "./" + p, Mode: 0o644, Size: int64(len(fs[p])), Typeflag: tar.TypeReg})
		tw.Write(fs[p])
	}
	tw.Close()
	return b.Bytes()
}

// deb is a Debian package: an ar archive of debian-binary, control.tar.gz
// and data.tar.gz.
func deb(t testing.TB, fs files) string {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed (apt-get install dpkg)")
	}
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	member := func(name string, data []byte) {
		b.WriteString(pad(name, 16) + pad("0", 12) + pad("0", 6) + pad("0", 6) + pad("100644", 8) + pad(itoa(len(data)), 10) + "`\n")
		b.Write(data)
		if len(data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", compress(t, ".gz", tarOf(t, files{"control": []byte("Package: x\n")})))
	member("data.tar.gz", compress(t, ".gz", tarOf(t, fs)))
	p := filepath.Join(t.TempDir(), "pkg.deb")
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func pad(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
func itoa(n int) string          { return strconv.Itoa(n) }

func archPkg(t testing.TB, fs files) string {
	fs = maps(fs, files{".PKGINFO": []byte("pkgname = linux\n")})
	p := filepath.Join(t.TempDir(), "linux-6.12-1-x86_64.pkg.tar.zst")
	os.WriteFile(p, compress(t, ".zst", tarOf(t, fs)), 0o644)
	return p
}

func maps(a, b files) files {
	out := files{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func checkKernel(t *testing.T, name string, src Source) {
	t.Helper()
	k, err := OpenKernel(src, t.TempDir())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer k.Close()
	if k.Release != fixRelease || k.Arch != AMD64 {
		t.Errorf("%s: release %q arch %q", name, k.Release, k.Arch)
	}
	if got := strings.Join(k.ModuleNames(), " "); got != "net_helper veth" {
		t.Errorf("%s: modules %q, want veth and what it depends on", name, got)
	}
	for _, f := range k.Modules {
		if b, err := os.ReadFile(f); err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("%s: module %s not unpacked: %v", name, f, err)
		}
	}
}

func TestOpenKernelLayouts(t *testing.T) {
	boot := "boot/vmlinuz-" + fixRelease
	lib := "lib/modules/" + fixRelease
	usr := "usr/lib/modules/" + fixRelease
	for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
		checkKernel(t, "boot+lib dir"+ext, Source{Kernel: writeDir(t, kernelFiles(t, boot, lib, ext))})
	}
	checkKernel(t, "usr/lib/modules dir", Source{Kernel: writeDir(t, kernelFiles(t, usr+"/vmlinuz", usr, ".zst"))})
	dir := writeDir(t, kernelFiles(t, boot, lib, ".xz"))
	checkKernel(t, "bare image", Source{Kernel: filepath.Join(dir, boot)})
	checkKernel(t, "deb", Source{Kernel: deb(t, kernelFiles(t, boot, lib, ".xz"))})
	checkKernel(t, "deb + modules deb", Source{
		Kernel:  deb(t, kernelFiles(t, usr+"/vmlinuz", "", "")),
		Modules: []string{deb(t, kernelFiles(t, "", usr, ".xz"))},
	})
	checkKernel(t, "arch", Source{Kernel: archPkg(t, kernelFiles(t, usr+"/vmlinuz", usr, ".zst"))})
	checkKernel(t, "modules.dep", Source{Kernel: writeDir(t, maps(kernelFiles(t, boot, lib, ""), files{
		lib + "/modules.dep": []byte("kernel/drivers/net/veth.ko: kernel/net/net-helper.ko\nkernel/net/net-helper.ko:\n"),
	}))})
}

func TestOpenKernelRPM(t *testing.T) {
	core := rpm(t, "kernel-core", kernelFiles(t, "lib/modules/"+fixRelease+"/vmlinuz", "", ""))
	mods := rpm(t, "kernel-modules", kernelFiles(t, "", "lib/modules/"+fixRelease, ".xz"))
	checkKernel(t, "rpm", Source{Kernel: core, Modules: []string{mods}})
}

// rpm builds a binary RPM of fs with rpmbuild.
func rpm(t *testing.T, name string, fs files) string {
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		t.Skip("rpmbuild not installed (apt-get install rpm)")
	}
	top := t.TempDir()
	root := writeDir(t, fs)
	spec := filepath.Join(top, name+".spec")
	var list strings.Builder
	for p := range fs {
		list.WriteString("/" + p + "\n")
	}
	os.WriteFile(spec, []byte("Name: "+name+"\nVersion: 6.12.117\nRelease: 1\nSummary: fixture\nLicense: GPL\nBuildArch: x86_64\n"+
		"%description\nfixture\n%install\ncp -a "+root+"/. %{buildroot}/\n%files\n"+list.String()), 0o644)
	cmd := exec.Command("rpmbuild", "-bb", "--define", "_topdir "+top, "--define", "__os_install_post %{nil}",
		"--define", "_build_id_links none", "--nodeps", spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild made %v", rpms)
	}
	return rpms[0]
}

func TestOpenKernelRejectsInputs(t *testing.T) {
	boot := "boot/vmlinuz-" + fixRelease
	usr := "usr/lib/modules/" + fixRelease
	other := "usr/lib/modules/6.1.0-9-amd64"
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a kernel\n"), 0o644)
	brokenDeb := filepath.Join(dir, "x.deb")
	os.WriteFile(brokenDeb, []byte("!<arch>\ngarbage"), 0o644)
	for name, c := range map[string]struct {
		src  Source
		want string
	}{
		"missing":           {Source{Kernel: filepath.Join(dir, "missing")}, "no such file"},
		"text":              {Source{Kernel: text}, "no kernel image"},
		"empty dir":         {Source{Kernel: t.TempDir()}, "no kernel image"},
		"broken deb":        {Source{Kernel: brokenDeb}, "dpkg-deb"},
		"modules only":      {Source{Kernel: deb(t, kernelFiles(t, "", usr, ".xz"))}, "no kernel image"},
		"other release":     {Source{Kernel: deb(t, kernelFiles(t, boot, "", "")), Modules: []string{deb(t, kernelFiles(t, "", other, ".xz"))}}, "modules of release 6.1.0-9-amd64, but the kernel is " + fixRelease},
		"no modules in it":  {Source{Kernel: deb(t, kernelFiles(t, boot, "", "")), Modules: []string{deb(t, files{"usr/share/doc/x": []byte("x")})}}, "holds no kernel modules"},
		"image as modules":  {Source{Kernel: deb(t, kernelFiles(t, boot, "", "")), Modules: []string{text}}, "not a package"},
		"image, no modules": {Source{Kernel: deb(t, kernelFiles(t, usr+"/vmlinuz", "", ""))}, "none of its modules: name the package that has them with --modules"},
		"veth=m, no module": {Source{Kernel: deb(t, maps(kernelFiles(t, boot, "", ""), files{"boot/config-" + fixRelease: []byte("CONFIG_VETH=m\n"),
			"lib/modules/" + fixRelease + "/kernel/fs/other.ko": fakeModule("other", "")}))}, "builds veth as a module"},
		"missing dependency": {Source{Kernel: writeDir(t, files{boot: fixtureImage(t),
			"lib/modules/" + fixRelease + "/veth.ko": fakeModule("veth", "gone")})}, "veth needs gone"},
		"two kernels": {Source{Kernel: writeDir(t, files{boot: fixtureImage(t), "boot/vmlinuz-6.1.0-9-amd64": fixtureImage(t)})}, "several kernels"},
	} {
		tmp := t.TempDir()
		_, err := OpenKernel(c.src, tmp)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "kernel-*")); len(left) > 0 {
			t.Errorf("%s: left behind %v", name, left)
		}
	}
}

func TestIdentifyARM64Image(t *testing.T) {
	img := make([]byte, 4096)
	copy(img[0x38:], "ARM\x64")
	copy(img[100:], "Linux version 6.12.117+deb13-cloud-arm64 (debian-kernel@lists.debian.org) #1 SMP")
	dir := t.TempDir()
	for name, data := range map[string][]byte{"Image": img, "vmlinuz.gz": compress(t, ".gz", img)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		k, err := OpenKernel(Source{Kernel: p}, t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Arch != ARM64 || k.Release != "6.12.117+deb13-cloud-arm64" {
			t.Errorf("%s: arch %s release %q", name, k.Arch, k.Release)
		}
		k.Close()
	}
}

func TestParseModulesDepAndModinfo(t *testing.T) {
	deps := parseModulesDep(strings.NewReader("kernel/drivers/net/veth.ko.xz:\nkernel/a/b-c.ko.zst: kernel/d.ko.zst kernel/e-f.ko.zst\nbroken line\n"))
	if len(deps["veth"]) != 0 || strings.Join(deps["b_c"], ",") != "d,e_f" {
		t.Errorf("modules.dep: %v", deps)
	}
	if got := parseModinfoDepends([]byte("a=b\x00depends=x,y-z\x00")); strings.Join(got, ",") != "x,y_z" {
		t.Errorf("modinfo depends: %v", got)
	}
}

func FuzzParseModulesDep(f *testing.F) {
	f.Add("kernel/a.ko: kernel/b.ko.xz\n")
	f.Fuzz(func(t *testing.T, s string) {
		for mod, ds := range parseModulesDep(strings.NewReader(s)) {
			if mod == "" || strings.Contains(mod, "-") {
				t.Fatalf("module %q", mod)
			}
			for _, d := range ds {
				if d == "" {
					t.Fatal("empty dependency")
				}
			}
		}
	})
}

func FuzzParseBanner(f *testing.F) {
	f.Add([]byte("xx Linux version 6.1.0-9-arm64 (x) #1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if rel, err := parseBanner(b); err == nil && (rel == "" || !printable(rel)) {
			t.Fatalf("release %q", rel)
		}
	})
}

// FuzzOpenPackage feeds arbitrary bytes as a package or image: OpenKernel
// either fails with an error or returns a kernel with an image and a
// release, and never leaves files behind.
func FuzzOpenPackage(f *testing.F) {
	usr := "usr/lib/modules/" + fixRelease
	f.Add(compress(f, ".zst", tarOf(f, kernelFiles(f, usr+"/vmlinuz", usr, ".zst"))))
	f.Add(fixtureImage(f))
	f.Add(compress(f, ".gz", append(make([]byte, 0x38), "ARM\x64"...)))
	f.Add([]byte{0xed, 0xab, 0xee, 0xdb, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.HasPrefix(data, debMagic) {
			return // dpkg-deb's business
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "pkg")
		os.WriteFile(p, data, 0o644)
		tmp := t.TempDir()
		k, err := OpenKernel(Source{Kernel: p}, tmp)
		if err != nil {
			if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
				t.Fatalf("left behind %v", left)
			}
			return
		}
		defer k.Close()
		if k.Image == "" || k.Release == "" || (k.Arch != AMD64 && k.Arch != ARM64) {
			t.Fatalf("kernel %+v", k)
		}
	})
}
