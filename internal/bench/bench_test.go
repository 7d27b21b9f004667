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
	"syscall"
	"testing"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
)

func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// buildNscheck builds the static nscheck binary once, for the catalog
// benchmark only (plain `go test` of this package builds nothing).
func buildNscheck(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "nscheck")
	build := exec.Command("go", "build", "-o", bin, "github.com/nscheck/nscheck/cmd/nscheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build nscheck: %v\n%s", err, out)
	}
	return bin
}

func init() {
	helper.Handle("bench.noop", func(struct{}) (any, error) { return struct{}{}, nil })
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

// BenchmarkSpawn: spawn -> answer -> reap of a helper with one new namespace.
func BenchmarkSpawn(b *testing.B) {
	needRoot(b)
	for _, typ := range nsfs.Types {
		b.Run(typ, func(b *testing.B) {
			s := helper.Spec{Action: "bench.noop", Cloneflags: nsfs.Flags[typ]}
			if typ == "user" {
				s.UIDMappings, s.GIDMappings = helper.RootMapping()
			}
			for b.Loop() {
				if err := helper.Run(context.Background(), s, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnshare: the floor, `unshare <flags> true` for the same type.
func BenchmarkUnshare(b *testing.B) {
	needRoot(b)
	if _, err := exec.LookPath("unshare"); err != nil {
		b.Skip("unshare not installed (util-linux)")
	}
	for _, typ := range nsfs.Types {
		b.Run(typ, func(b *testing.B) {
			args := append(append([]string{}, unshareArgs[typ]...), "true")
			for b.Loop() {
				if out, err := exec.Command("unshare", args...).CombinedOutput(); err != nil {
					b.Fatalf("unshare %v: %v %s", args, err, out)
				}
			}
		})
	}
}

// BenchmarkCatalog: a whole `nscheck run`, controls included; reports the
// peak RSS of the run too.
func BenchmarkCatalog(b *testing.B) {
	needRoot(b)
	nscheckBin := buildNscheck(b)
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			var peak int64
			for b.Loop() {
				cmd := exec.Command(nscheckBin, "run", "-q", fmt.Sprintf("--procs=%d", procs))
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
