package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/kernelcache"
	"github.com/nscheck/nscheck/internal/leanbuild"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/vm"
)

// The wider matrix: the kernels .ci/kernels.sh downloads (bullseye's 5.10,
// sid's newest cloud and rt kernels as linux-binary + linux-modules pairs,
// an arm64 kernel), each booted once, and a Fedora-layout RPM made here
// from a Debian kernel. The 6.1 and 6.12 kernels are TestVM's.

func needMatrix(t *testing.T) map[vm.Arch][]kernelcache.Kernel {
	t.Helper()
	byArch := map[vm.Arch][]kernelcache.Kernel{}
	for _, k := range kernelcache.Matrix() {
		a, err := vm.ParseArch(k.Arch)
		if err != nil {
			t.Fatalf("matrix slot %s: %v", k.Slot, err)
		}
		if _, err := exec.LookPath(a.QEMU()); err != nil {
			vmMissing(t, a.QEMU()+" is not installed")
		}
		byArch[a] = append(byArch[a], k)
	}
	if len(byArch[vm.AMD64]) < 3 || len(byArch[vm.ARM64]) < 1 {
		vmMissing(t, "the matrix kernels are not in "+kernelcache.MatrixDir()+" (.ci/kernels.sh downloads them)")
	}
	return byArch
}

// staticNscheckFor builds the guest's init for arch.
func staticNscheckFor(t *testing.T, arch vm.Arch) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nscheck-"+string(arch))
	if err := leanbuild.Build(".", bin, leanbuild.Options{Go: goTool(), GOARCH: string(arch)}, "."); err != nil {
		t.Fatal(err)
	}
	return bin
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// assertWholeCatalog: every property of the catalog passed or skipped
// with a reason, those that need the guest's setup passed, the run had no
// errors, and the report is of arch.
func assertWholeCatalog(t *testing.T, r *report.Report, arch vm.Arch) {
	t.Helper()
	rel := r.Kernel.Release
	if len(r.Errors) > 0 {
		t.Errorf("%s: run errors %q", rel, r.Errors)
	}
	if r.Kernel.Machine != arch.Machine() {
		t.Errorf("%s: machine %q, want %s", rel, r.Kernel.Machine, arch.Machine())
	}
	if r.Summary.Passed == 0 {
		t.Errorf("%s: nothing passed", rel)
	}
	assertGuestIsASystem(t, r)
	for _, res := range r.Results {
		switch {
		case res.State == report.Failed:
			t.Errorf("%s: %s failed: %s", rel, res.ID, res.Reason)
		case res.State == report.Skipped && (res.Reason == "" || strings.Contains(res.Reason, "harness error")):
			t.Errorf("%s: %s skipped without a reason that names what is missing: %q", rel, res.ID, res.Reason)
		}
	}
	t.Logf("%s (%s): %d passed, %d skipped, boot %d ms, total %d ms", rel, r.Kernel.Machine,
		r.Summary.Passed, r.Summary.Skipped, r.VM.BootMS, r.VM.TotalMS)
}

// TestVMMatrix boots each matrix kernel once, one `nscheck vm` per
// architecture, and asserts the whole catalog on each.
func TestVMMatrix(t *testing.T) {
	byArch := needMatrix(t)
	for _, arch := range []vm.Arch{vm.AMD64, vm.ARM64} {
		t.Run(string(arch), func(t *testing.T) {
			ks := byArch[arch]
			init := staticNscheckFor(t, arch)
			out := t.TempDir()
			args := []string{"vm", "--arch", string(arch), "--init", init, "--out", out, "--timeout", "15m"}
			for _, k := range ks {
				args = append(args, k.Args()...)
			}
			want := len(ks)
			if arch == vm.AMD64 {
				// A Fedora-layout kernel-core + kernel-modules pair made
				// from the newest Debian cloud kernel.
				if core, mods := fedoraRPMs(t, ks); core != "" {
					args = append(args, "--kernel", core, "--modules", mods)
					want++
				}
			}
			res := nscheck(t, args...)
			t.Logf("vm %s (exit %d):\n%s", arch, res.code, res.stderr)
			paths, _ := filepath.Glob(filepath.Join(out, "*.json"))
			if len(paths) != want {
				t.Fatalf("reports %v, want %d", paths, want)
			}
			for _, p := range paths {
				r := readReport(t, p)
				assertWholeCatalog(t, r, arch)
				if !strings.Contains(strings.Join(r.VM.Modules, " "), "veth") {
					t.Errorf("%s: modules loaded %q, want veth (=m in Debian's kernels)", r.Kernel.Release, r.VM.Modules)
				}
			}
			if res.code != exitOK {
				t.Errorf("vm: exit %d, want 0", res.code)
			}
		})
	}
}

// fedoraRPMs wraps the newest cloud kernel's image and network modules in
// Fedora's layout (/lib/modules/<release>/vmlinuz in kernel-core, the
// modules in kernel-modules) with rpmbuild; "" when there is no rpmbuild
// and NSCHECK_REQUIRE_VM is unset.
func fedoraRPMs(t *testing.T, ks []kernelcache.Kernel) (core, mods string) {
	t.Helper()
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		if os.Getenv("NSCHECK_REQUIRE_VM") != "" {
			t.Fatal("rpmbuild is not installed (apt-get install rpm)")
		}
		t.Log("no rpmbuild: the RPM kernel is left out (apt-get install rpm)")
		return "", ""
	}
	var src kernelcache.Kernel
	for _, k := range ks {
		if strings.HasSuffix(k.Slot, "newest-cloud") && len(k.Modules) > 0 {
			src = k
		}
	}
	if src.Image == "" {
		t.Fatal("no amd64-newest-cloud slot to wrap in an RPM")
	}
	work := t.TempDir()
	img, modDir := filepath.Join(work, "image"), filepath.Join(work, "modules")
	for dir, deb := range map[string]string{img: src.Image, modDir: src.Modules[0]} {
		if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
		}
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(img, "usr/lib/modules/*/vmlinuz"))
	if len(vmlinuz) != 1 {
		t.Fatalf("%s: vmlinuz %v", src.Image, vmlinuz)
	}
	rel := filepath.Base(filepath.Dir(vmlinuz[0]))
	core = rpmbuild(t, work, "kernel-core", map[string]string{"/lib/modules/" + rel + "/vmlinuz": vmlinuz[0]})
	files := map[string]string{}
	for _, sub := range []string{"kernel/drivers/net", "kernel/net"} {
		root := filepath.Join(modDir, "usr/lib/modules", rel)
		filepath.Walk(filepath.Join(root, sub), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				r, _ := filepath.Rel(root, p)
				files["/lib/modules/"+rel+"/"+r] = p
			}
			return nil
		})
	}
	mods = rpmbuild(t, work, "kernel-modules", files)
	return core, mods
}

// rpmbuild builds a binary RPM named name holding files (path in the
// package -> file here).
func rpmbuild(t *testing.T, work, name string, files map[string]string) string {
	t.Helper()
	top := filepath.Join(work, "rpm-"+name)
	var install, list strings.Builder
	for dst, src := range files {
		fmt.Fprintf(&install, "install -D -m 0644 %q %%{buildroot}%q\n", src, dst)
		fmt.Fprintf(&list, "%q\n", dst)
	}
	spec := filepath.Join(work, name+".spec")
	os.WriteFile(spec, []byte("Name: "+name+"\nVersion: 1\nRelease: 1\nSummary: a Debian kernel in Fedora's layout\nLicense: GPL-2.0-only\n"+
		"%description\nA Debian kernel in Fedora's layout, for nscheck's tests.\n%install\n"+install.String()+"%files\n"+list.String()), 0o644)
	cmd := exec.Command("rpmbuild", "-bb", "--define", "_topdir "+top, "--define", "__os_install_post %{nil}",
		"--define", "_build_id_links none", "--define", "debug_package %{nil}", "--nodeps", spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild %s: %v\n%s", name, err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild %s made %v", name, rpms)
	}
	return rpms[0]
}
