// Package bench measures nscheck against the kernel's own floor: the cost of
// a helper spawn per namespace type next to util-linux `unshare <same flags>
// true`, the wall time and peak RSS of a whole catalog run, serial and with
// --procs. `make bench` runs these and prints the ratios; the targets are
// met here, in benchmarks, never in timed tests.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/kernelcache"
	"github.com/nscheck/nscheck/internal/leanbuild"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/release"
	"github.com/nscheck/nscheck/internal/report"
)

func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// build builds a binary for a benchmark (plain `go test` of this package
// builds nothing): nscheck as `make build` does, with its lean helper
// embedded; nscheck as `go install .../cmd/nscheck@latest` gives it at a
// release ("install-release": this tree as release v0.99.0 from a module
// proxy on disk, internal/release) and between releases ("install": no
// flags, cgo as the environment has it, no lean helper: its helpers run a
// copy of it); or the lean helper alone.
func build(b *testing.B, what string) string {
	b.Helper()
	dir := b.TempDir()
	root := filepath.Join("..", "..")
	switch what {
	case "install":
		bin := filepath.Join(dir, "nscheck-"+what)
		cmd := exec.Command("go", "build", "-o", bin, "github.com/nscheck/nscheck/cmd/nscheck")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build (as go install): %v\n%s", err, msg)
		}
		return bin
	case "install-release":
		rel, err := release.Files(root, "v0.99.0")
		if err != nil {
			b.Fatal(err)
		}
		if err := release.Proxy(filepath.Join(dir, "proxy"), root, "v0.99.0", rel); err != nil {
			b.Fatal(err)
		}
		bin, err := release.GoInstall(filepath.Join(dir, "proxy"), "v0.99.0", dir, filepath.Join(dir, "bin"))
		if err != nil {
			b.Fatal(err)
		}
		return bin
	}
	if what == "helper" {
		bin := filepath.Join(dir, "nscheck-helper")
		if err := leanbuild.Helper(root, bin, leanbuild.Options{}); err != nil {
			b.Fatal(err)
		}
		return bin
	}
	bin := filepath.Join(dir, "nscheck")
	if err := leanbuild.Nscheck(root, bin, leanbuild.Options{}); err != nil {
		b.Fatal(err)
	}
	return bin
}

// unshareArgs are util-linux's flags for a namespace type; PID and time
// namespaces only apply to children, so those fork like our helper does.
var unshareArgs = map[string][]string{
	"mnt": {"--mount"}, "uts": {"--uts"}, "ipc": {"--ipc"}, "pid": {"--pid", "--fork"},
	"net": {"--net"}, "user": {"--user", "--map-root-user"}, "cgroup": {"--cgroup"},
	"time": {"--time", "--fork"},
}

func needRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("compares namespace creation as root")
	}
}

// BenchmarkSpawn: spawn -> answer -> reap of the helper binary nscheck uses
// (the lean one), with one new namespace, doing nothing else, against the
// floor: util-linux `unshare <same flags> true`. Each iteration runs both,
// in alternating order, so that the two are measured under the same load
// on a shared machine (run one after the other, minutes apart, their ratio
// moved by a third). It reports each one's cost per op (spawn-ms,
// unshare-ms) and their ratio (x-unshare; the target is 1.5); ns/op is the
// two together.
func BenchmarkSpawn(b *testing.B) {
	needRoot(b)
	if _, err := exec.LookPath("unshare"); err != nil {
		b.Skip("unshare not installed (util-linux)")
	}
	exe := build(b, "helper")
	for _, typ := range nsfs.Types {
		b.Run(typ, func(b *testing.B) {
			s := helper.Spec{Action: "prop.ns-id", Args: typ, Cloneflags: nsfs.Flags[typ], Exe: exe}
			if typ == "user" {
				s.UIDMappings, s.GIDMappings = helper.RootMapping()
			}
			spawn := func() error { return helper.Run(context.Background(), s, nil) }
			args := append(append([]string{}, unshareArgs[typ]...), "true")
			floor := func() error {
				if out, err := exec.Command("unshare", args...).CombinedOutput(); err != nil {
					return fmt.Errorf("unshare %v: %w %s", args, err, out)
				}
				return nil
			}
			var spent [2]time.Duration
			for i := 0; b.Loop(); i++ {
				for k := range 2 {
					which := (i + k) % 2 // spawn first on even iterations
					start := time.Now()
					err := []func() error{spawn, floor}[which]()
					spent[which] += time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			n := float64(b.N)
			b.ReportMetric(spent[0].Seconds()*1e3/n, "spawn-ms")
			b.ReportMetric(spent[1].Seconds()*1e3/n, "unshare-ms")
			b.ReportMetric(float64(spent[0])/float64(spent[1]), "x-unshare")
		})
	}
}

// BenchmarkCatalog: a whole `nscheck run`, controls included, as it runs
// by default (as many properties at once as there are CPUs), serially
// (--procs 1) and with --procs 2; reports the peak RSS of the run too.
// install-vs-make runs the catalog with the binaries `go install` makes at
// a release and between releases and with `make build`'s, in rotating
// order in each iteration (so that all see the same load on a shared
// machine), and reports each one's wall time and their ratios to make's
// (release-x-make, whose target is 1.1, and x-make).
func BenchmarkCatalog(b *testing.B) {
	needRoot(b)
	nscheckBin := build(b, "nscheck")
	b.Run("install-vs-make", func(b *testing.B) {
		bins := [3]string{build(b, "install-release"), build(b, "install"), nscheckBin}
		var spent [3]time.Duration
		for i := 0; b.Loop(); i++ {
			for k := range 3 {
				which := (i + k) % 3
				start := time.Now()
				if out, err := exec.Command(bins[which], "run", "-q").CombinedOutput(); err != nil {
					b.Fatalf("%s run: %v\n%s", bins[which], err, out)
				}
				spent[which] += time.Since(start)
			}
		}
		n := float64(b.N)
		b.ReportMetric(spent[0].Seconds()/n, "install-release-s")
		b.ReportMetric(spent[1].Seconds()/n, "install-s")
		b.ReportMetric(spent[2].Seconds()/n, "make-s")
		b.ReportMetric(float64(spent[0])/float64(spent[2]), "release-x-make")
		b.ReportMetric(float64(spent[1])/float64(spent[2]), "x-make")
	})
	for _, procs := range []string{"default", "1", "2"} {
		b.Run("procs="+procs, func(b *testing.B) {
			args := []string{"run", "-q"}
			if procs != "default" {
				args = append(args, "--procs="+procs)
			}
			var peak int64
			for b.Loop() {
				cmd := exec.Command(nscheckBin, args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("nscheck run: %v\n%s", err, out)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					peak = max(peak, ru.Maxrss)
				}
			}
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
		})
	}
}

// BenchmarkVM: `nscheck vm` on each cached Debian kernel, whole catalog:
// QEMU start, boot, catalog and power-off, per kernel (the target is 10 s
// for an x86_64 kernel under TCG): the 6.1 and 6.12 debs .ci/run keeps and
// the matrix that .ci/kernels.sh keeps, arm64 included (its init
// cross-built). It needs no root (the guest is root in its own machine),
// but QEMU and the kernels.
func BenchmarkVM(b *testing.B) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	type kernel struct {
		name string
		args []string
		arch string
	}
	var ks []kernel
	for _, deb := range kernelcache.Debs("*") {
		// linux-image-6.12.117+deb12-cloud-amd64-unsigned_... is 6.12.
		ver := strings.TrimPrefix(filepath.Base(deb), "linux-image-")
		series := strings.Join(strings.SplitN(ver, ".", 3)[:2], ".")
		ks = append(ks, kernel{"amd64-" + series + "-cloud", []string{"--kernel", deb}, "amd64"})
	}
	for _, k := range kernelcache.Matrix() {
		ks = append(ks, kernel{k.Slot, k.Args(), k.Arch})
	}
	if len(ks) == 0 {
		b.Skip("no Debian kernels in " + kernelcache.Dir() + ": run .ci/run, which downloads them")
	}
	nscheckBin := build(b, "nscheck")
	inits := map[string]string{}
	for _, k := range ks {
		if k.arch == "amd64" || inits[k.arch] != "" {
			continue
		}
		if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
			continue
		}
		bin := filepath.Join(b.TempDir(), "nscheck-"+k.arch)
		if err := leanbuild.Build(filepath.Join("..", ".."), bin, leanbuild.Options{GOARCH: k.arch}, "./cmd/nscheck"); err != nil {
			b.Fatal(err)
		}
		inits[k.arch] = bin
	}
	for _, k := range ks {
		args := append([]string{"vm", "--timeout", "30m"}, k.args...)
		if k.arch != "amd64" {
			if inits[k.arch] == "" {
				continue
			}
			args = append(args, "--arch", k.arch, "--init", inits[k.arch])
		}
		b.Run("kernel="+k.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				out := b.TempDir()
				cmd := exec.Command(nscheckBin, append(args, "--out", out)...)
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("nscheck %v: %v\n%s", args, err, msg)
				}
				reps, _ := filepath.Glob(filepath.Join(out, "*.json"))
				if len(reps) != 1 {
					b.Fatalf("nscheck %v wrote %v", args, reps)
				}
				r, err := report.ReadFile(reps[0])
				if err != nil {
					b.Fatal(err)
				}
				if r.VM == nil || r.VM.TotalMS <= 0 {
					b.Fatalf("%s: no vm.total_ms in the report", reps[0])
				}
				total += time.Duration(r.VM.TotalMS) * time.Millisecond
			}
			// What nscheck itself reports per kernel (QEMU start to
			// power-off), without unpacking the package and the initramfs.
			b.ReportMetric(total.Seconds()/float64(b.N), "s/kernel")
		})
	}
}
