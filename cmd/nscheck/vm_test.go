package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/kernelcache"
	"github.com/nscheck/nscheck/internal/leanbuild"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/vm"
)

// The tests that boot real kernels need QEMU and two Debian cloud kernels
// in the cache .ci/run fills (NSCHECK_KERNEL_CACHE overrides it). Without
// them they skip, unless NSCHECK_REQUIRE_VM is set (.ci/run sets it: there
// they must run).

// vmMissing skips (or, with NSCHECK_REQUIRE_VM, fails) a test that boots
// kernels for want of what.
func vmMissing(t *testing.T, what string) {
	t.Helper()
	msg := what + ": run .ci/run (it installs QEMU and downloads the kernels), or see README"
	if os.Getenv("NSCHECK_REQUIRE_VM") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func needVM(t *testing.T) (k61, k612 string) {
	t.Helper()
	missing := func(what string) { vmMissing(t, what) }
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing("qemu-system-x86_64 is not installed")
	}
	k61 = newest(kernelcache.Debs("6.1.*"))
	k612 = newest(kernelcache.Debs("6.12.*"))
	if k61 == "" || k612 == "" {
		missing("no Debian 6.1 and 6.12 cloud kernels in " + kernelcache.Dir())
	}
	return k61, k612
}

// newest is the file with the highest version (numbers compared as
// numbers).
func newest(files []string) string {
	best := ""
	for _, f := range files {
		if best == "" || versionLess(best, f) {
			best = f
		}
	}
	return best
}

var numRE = regexp.MustCompile(`\d+|\D+`)

func versionLess(a, b string) bool {
	pa, pb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func TestVersionLess(t *testing.T) {
	if !versionLess("linux-image-6.1.0-9-cloud", "linux-image-6.1.0-57-cloud") || versionLess("6.12.117", "6.12.99") {
		t.Error("numeric parts compared as text")
	}
}

// staticNscheck builds the guest's init: nscheck itself, statically linked.
func staticNscheck(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nscheck")
	if err := leanbuild.Build(".", bin, leanbuild.Options{Go: goTool()}, "."); err != nil {
		t.Fatal(err)
	}
	return bin
}

func assertCorePass(t *testing.T, r *report.Report) {
	t.Helper()
	byID := map[string]report.Result{}
	for _, res := range r.Results {
		byID[res.ID] = res
	}
	for _, id := range coreFour {
		if res := byID[id]; res.State != report.Passed || res.Control != "detected" {
			t.Errorf("%s on %s: %s, control %s (%s)", id, r.Kernel.Release, res.State, res.Control, res.Reason)
		}
	}
}

// TestVM boots the two kernels, checks their reports, matrix and diff on
// them, then a distro policy knob, a panic, a hang and a broken image. It
// needs no root: the guest is root in its own machine.
func TestVM(t *testing.T) {
	k61, k612 := needVM(t)
	init := staticNscheck(t)
	out := t.TempDir()

	// The whole catalog runs; exit 1 would mean a property failed on one of
	// the kernels, which is the catalog's business: this test asserts the
	// core four and the guest machinery.
	res := nscheck(t, "vm", "--init", init, "--kernel", k61, "--kernel", k612, "--out", out)
	if res.code != 0 && res.code != exitFail {
		t.Fatalf("vm: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("vm (exit %d):\n%s", res.code, res.stderr)
	paths, _ := filepath.Glob(filepath.Join(out, "*.json"))
	if len(paths) != 2 {
		t.Fatalf("reports %v, want two", paths)
	}
	var reps []*report.Report
	for _, p := range paths {
		r := readReport(t, p)
		reps = append(reps, r)
		if filepath.Base(p) != r.Kernel.Release+".json" {
			t.Errorf("%s holds the report of %s", p, r.Kernel.Release)
		}
		assertCorePass(t, r)
		assertGuestIsASystem(t, r)
		if len(r.Errors) > 0 {
			t.Errorf("%s: run errors %q", r.Kernel.Release, r.Errors)
		}
		if r.VM == nil || r.VM.Accel == "" || r.VM.BootMS <= 0 || !strings.Contains(r.VM.Cmdline, vm.GuestEnv+"=1") {
			t.Errorf("%s: vm section %+v", r.Kernel.Release, r.VM)
		}
		if r.VM != nil && r.VM.Accel == vm.AccelTCG && r.VM.CPU != vm.TCGCPU {
			t.Errorf("%s: cpu %q under TCG, want %q", r.Kernel.Release, r.VM.CPU, vm.TCGCPU)
		}
		if r.VM != nil && r.VM.Firmware != vm.FirmwareQboot {
			t.Errorf("%s: firmware %q, want qboot (in qemu-system-data)", r.Kernel.Release, r.VM.Firmware)
		}
		if r.VM != nil && r.VM.Entry != vm.EntryPVH {
			t.Errorf("%s: booted by %q, want pvh (Debian's kernels have CONFIG_PVH)", r.Kernel.Release, r.VM.Entry)
		}
		if r.VM != nil && r.VM.Cgroup != vm.CgroupNamed {
			t.Errorf("%s: cgroup layout %q, want the default, %s", r.Kernel.Release, r.VM.Cgroup, vm.CgroupNamed)
		}
		if r.VM != nil && strings.Join(r.VM.Modules, " ") != "veth" {
			t.Errorf("%s: modules loaded %q, want veth (=m in Debian's cloud kernels)", r.Kernel.Release, r.VM.Modules)
		}
		// 6.1 refuses CLONE_VM into a pending time namespace: the time
		// properties pass there only through the forked child
		// (helper.Spec.Fork), which this keeps honest.
		for _, res := range r.Results {
			if strings.HasPrefix(res.ID, "time.") && res.State != report.Passed {
				t.Errorf("%s: %s %s (%s), want passed", r.Kernel.Release, res.ID, res.State, res.Reason)
			}
		}
		if !strings.Contains(res.stderr, r.Kernel.Release+":") || !strings.Contains(res.stderr, "done: ") {
			t.Errorf("no progress line for %s in:\n%s", r.Kernel.Release, res.stderr)
		}
	}
	if !strings.HasPrefix(reps[0].Kernel.Release, "6.1.") || !strings.HasPrefix(reps[1].Kernel.Release, "6.12.") {
		t.Fatalf("releases %s, %s", reps[0].Kernel.Release, reps[1].Kernel.Release)
	}

	t.Run("matrix", func(t *testing.T) { checkMatrix(t, paths, reps) })
	t.Run("diff", func(t *testing.T) { checkDiff(t, paths, reps) })

	// Through the bzImage this time (--pvh=false): the way a boot loader
	// starts the kernel stays tested.
	t.Run("unprivileged_userns_clone=0", func(t *testing.T) {
		dir := t.TempDir()
		res := nscheck(t, "vm", "--init", init, "--kernel", k612, "--out", dir, "--pvh=false", "--append", "sysctl.kernel.unprivileged_userns_clone=0",
			"--label-filter", "prop: containsAny {user.unprivileged-create, uts.hostname-local, ipc.sysv-msgq-invisible, pid.child-is-init, mnt.proc-mount-no-leak, uts.distinct-ns, ipc.distinct-ns, pid.distinct-ns, mnt.distinct-ns}")
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		r := readReport(t, filepath.Join(dir, reps[1].Kernel.Release+".json"))
		assertCorePass(t, r)
		if r.VM.Entry != vm.EntryBzImage {
			t.Errorf("booted by %q with --pvh=false, want bzimage", r.VM.Entry)
		}
		if got := r.VM.Sysctls["kernel.unprivileged_userns_clone"]; got != "0" {
			t.Errorf("the guest saw kernel.unprivileged_userns_clone=%q, want 0", got)
		}
		for _, res := range r.Results {
			if res.ID == "user.unprivileged-create" {
				if res.State != report.Skipped || !strings.Contains(res.Reason, "unprivileged_userns_clone") {
					t.Errorf("user.unprivileged-create: %s (%s), want skipped naming the knob", res.State, res.Reason)
				}
				return
			}
		}
		t.Log("user.unprivileged-create is not in this catalog yet: only the knob itself was checked")
	})

	// The other cgroup layouts, each a kind of host: what needs the missing
	// hierarchy skips and says so, the rest passes.
	t.Run("cgroup layouts", func(t *testing.T) {
		for _, c := range []struct {
			layout, skipped, reason string
			passed                  []string
		}{
			{vm.CgroupV1, "cgroup.outside-relative cgroup.root-virtualized", "no cgroup2 hierarchy", []string{"cgroup.v1-release-agent", "cgroup.distinct-ns"}},
			{vm.CgroupV2, "cgroup.v1-release-agent", "no cgroup v1 hierarchy", []string{"cgroup.outside-relative", "cgroup.root-virtualized", "cgroup.distinct-ns"}},
			{vm.CgroupHybrid, "", "", []string{"cgroup.v1-release-agent", "cgroup.outside-relative", "cgroup.root-virtualized", "cgroup.distinct-ns"}},
		} {
			dir := t.TempDir()
			res := nscheck(t, "vm", "--init", init, "--kernel", k61, "--out", dir, "--cgroup", c.layout, "--label-filter", "ns:cgroup")
			if res.code != 0 {
				t.Fatalf("--cgroup %s: exit %d\n%s", c.layout, res.code, res.stderr)
			}
			r := readReport(t, filepath.Join(dir, reps[0].Kernel.Release+".json"))
			if r.VM == nil || r.VM.Cgroup != c.layout {
				t.Errorf("--cgroup %s: the report's vm section %+v", c.layout, r.VM)
			}
			byID := map[string]report.Result{}
			for _, res := range r.Results {
				byID[res.ID] = res
			}
			for _, id := range strings.Fields(c.skipped) {
				if res := byID[id]; res.State != report.Skipped || !strings.Contains(res.Reason, c.reason) {
					t.Errorf("--cgroup %s: %s %s (%s), want skipped: %s", c.layout, id, res.State, res.Reason, c.reason)
				}
			}
			for _, id := range c.passed {
				if res := byID[id]; res.State != report.Passed || res.Control != "detected" {
					t.Errorf("--cgroup %s: %s %s, control %s (%s), want passed", c.layout, id, res.State, res.Control, res.Reason)
				}
			}
		}
	})

	t.Run("panic", func(t *testing.T) {
		dir := t.TempDir()
		res := nscheck(t, "vm", "--init", init, "--kernel", k61, "--out", dir, "--append", "rdinit=/nonexistent")
		r := bootFailed(t, res, dir, reps[0].Kernel.Release)
		if !strings.Contains(r.Errors[0], "the kernel panicked: ") {
			t.Errorf("error %q", r.Errors[0])
		}
	})

	t.Run("hang", func(t *testing.T) {
		dir := t.TempDir()
		// panic=0 after nscheck's panic=-1: the kernel waits forever after the panic.
		res := nscheck(t, "vm", "--init", init, "--kernel", k61, "--out", dir, "--append", "rdinit=/nonexistent panic=0", "--timeout", "40s")
		r := bootFailed(t, res, dir, reps[0].Kernel.Release)
		if !strings.Contains(r.Errors[0], "did not start init within 40s") {
			t.Errorf("error %q", r.Errors[0])
		}
	})

	t.Run("truncated image", func(t *testing.T) {
		dir := t.TempDir()
		k, err := vm.OpenKernel(vm.Source{Kernel: k61}, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		data, err := os.ReadFile(k.Image)
		if err != nil {
			t.Fatal(err)
		}
		broken := filepath.Join(dir, "vmlinuz-broken")
		os.WriteFile(broken, data[:len(data)/4], 0o644)
		res := nscheck(t, "vm", "--init", init, "--kernel", broken, "--out", dir, "--timeout", "60s")
		r := bootFailed(t, res, dir, reps[0].Kernel.Release)
		t.Logf("truncated image: %s", r.Errors[0])
	})
}

// assertGuestIsASystem: properties that need what the guest's init
// provides pass in the guest when the catalog has them: the observer is
// not PID 1 (pid.kill-outside-esrch), lo is up (net.ports-independent) and
// a cgroup v1 hierarchy exists (cgroup.v1-release-agent, which skips
// without one; every kernel of the matrix has the CVE-2022-0492 fix).
func assertGuestIsASystem(t *testing.T, r *report.Report) {
	t.Helper()
	for _, res := range r.Results {
		switch res.ID {
		case "pid.kill-outside-esrch", "net.ports-independent", "cgroup.v1-release-agent":
			if res.State != report.Passed {
				t.Errorf("%s on %s: %s (%s)", res.ID, r.Kernel.Release, res.State, res.Reason)
			}
		}
	}
}

// bootFailed checks a boot that must fail: exit 1, one FAILED line, a
// report whose first error says why and whose others are console lines.
func bootFailed(t *testing.T, res result, dir, release string) *report.Report {
	t.Helper()
	if res.code != exitFail || !strings.Contains(res.stderr, "FAILED: ") {
		t.Fatalf("exit %d, want 1 with a FAILED line:\n%s", res.code, res.stderr)
	}
	r := readReport(t, filepath.Join(dir, release+".json"))
	if len(r.Errors) < 2 || !strings.HasPrefix(r.Errors[0], "boot: ") || !strings.HasPrefix(r.Errors[1], "console: ") || len(r.Results) != 0 {
		t.Fatalf("report of a failed boot: errors %q, %d results", r.Errors, len(r.Results))
	}
	return r
}

// checkMatrix: the grid of the two reports, as text and as JSON, says
// what the reports say.
func checkMatrix(t *testing.T, paths []string, reps []*report.Report) {
	dir := t.TempDir()
	js, md, html := filepath.Join(dir, "m.json"), filepath.Join(dir, "m.md"), filepath.Join(dir, "m.html")
	res := nscheck(t, append([]string{"matrix", "--no-color", "--json", js, "--markdown", md, "--html", html}, paths...)...)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	lines := strings.Split(res.stdout, "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "property "+reps[0].Kernel.Release+" "+reps[1].Kernel.Release {
		t.Errorf("header %q", lines[0])
	}
	for _, id := range coreFour {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + ` +PASS +PASS$`).MatchString(res.stdout) {
			t.Errorf("no PASS PASS row for %s in:\n%s", id, res.stdout)
		}
	}
	var grid struct {
		Columns []struct{ Name string }
		Rows    []struct {
			ID    string
			Cells []struct{ State string }
		}
	}
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &grid); err != nil {
		t.Fatal(err)
	}
	if len(grid.Columns) != 2 || len(grid.Rows) != len(reps[0].Results) {
		t.Fatalf("grid of %d columns and %d rows", len(grid.Columns), len(grid.Rows))
	}
	for _, row := range grid.Rows {
		for c, r := range reps {
			for _, res := range r.Results {
				if res.ID == row.ID && res.State != row.Cells[c].State {
					t.Errorf("%s on %s: grid says %s, report %s", row.ID, grid.Columns[c].Name, row.Cells[c].State, res.State)
				}
			}
		}
	}
	for _, f := range []string{md, html} {
		if b, err := os.ReadFile(f); err != nil || !strings.Contains(string(b), reps[0].Kernel.Release) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// checkDiff: the two kernels agree; a regression injected into a copy of
// one report is found and exits 1, and the reverse is an improvement.
func checkDiff(t *testing.T, paths []string, reps []*report.Report) {
	res := nscheck(t, "diff", "--no-color", paths[0], paths[1])
	t.Logf("diff of the two kernels (exit %d):\n%s", res.code, res.stdout)
	unchanged := 0
	for _, a := range reps[0].Results {
		for _, b := range reps[1].Results {
			if a.ID == b.ID && a.State == b.State && a.Reason == b.Reason {
				unchanged++
			} else if a.ID == b.ID && !strings.Contains(res.stdout, "  "+a.ID+" ") {
				t.Errorf("%s changed (%s -> %s) and the diff does not say so", a.ID, a.State, b.State)
			}
		}
	}
	regressed := strings.Contains(res.stdout, "\nregressions (")
	if !strings.Contains(res.stdout, fmt.Sprintf(" %d unchanged\n", unchanged)) || (res.code == exitFail) != regressed || res.code > exitFail {
		t.Errorf("diff: exit %d, want %d unchanged and exit 1 only with regressions", res.code, unchanged)
	}
	worse := *reps[1]
	worse.Results = append([]report.Result(nil), reps[1].Results...)
	for i := range worse.Results {
		if worse.Results[i].ID == "uts.hostname-local" {
			worse.Results[i].State, worse.Results[i].Reason = report.Failed, "isolation broken: injected"
		}
	}
	worse.Tally()
	broken := filepath.Join(t.TempDir(), "worse.json")
	if err := report.WriteFile(broken, &worse); err != nil {
		t.Fatal(err)
	}
	res = nscheck(t, "diff", "--no-color", paths[1], broken)
	if res.code != exitFail || !regexp.MustCompile(`regressions \(1\):\n  uts.hostname-local +PASS -> FAIL: isolation broken: injected`).MatchString(res.stdout) {
		t.Errorf("injected regression: exit %d\n%s", res.code, res.stdout)
	}
	res = nscheck(t, "diff", "--no-color", broken, paths[1])
	if res.code != 0 || !strings.Contains(res.stdout, "improvements (1):") {
		t.Errorf("reverse: exit %d\n%s", res.code, res.stdout)
	}
}
