package mutants

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nscheck/nscheck/internal/report"
)

// TestMutantKernels builds the base kernel and every mutant (or those
// NSCHECK_MUTANTS_ONLY matches), boots each with `nscheck vm` under TCG and
// judges its report. It runs only with NSCHECK_MUTANTS=1 (make mutants):
// a cold cache costs a kernel build. Knobs:
//
//	NSCHECK_BIN            the static nscheck to boot (default: built here)
//	NSCHECK_MUTANTS_CACHE  images and build tree (default /var/cache/nscheck/mutants)
//	NSCHECK_MUTANTS_OUT    score.md and the reports (default ../../bin/mutants)
//	NSCHECK_MUTANTS_ONLY   a regexp of mutant names to run (the base always runs)
//	NSCHECK_MUTANTS_JOBS   make -j (default: the number of CPUs)
//	NSCHECK_MUTANTS_TIMEOUT the bound of each boot (default 8m)
//	NSCHECK_MUTANTS_BOOTS  how many kernels boot at once (default 1)
//	NSCHECK_MUTANTS_REJUDGE=1 judge the reports a previous run kept, against
//	                       the metadata as it is now: no build, no boot
func TestMutantKernels(t *testing.T) {
	if os.Getenv("NSCHECK_MUTANTS") != "1" {
		t.Skip("set NSCHECK_MUTANTS=1 (make mutants) to build and boot the mutant kernels")
	}
	ctx := context.Background()
	ms, base, err := Load("../../mutants")
	if err != nil {
		t.Fatal(err)
	}
	if re := os.Getenv("NSCHECK_MUTANTS_ONLY"); re != "" {
		only, err := regexp.Compile(re)
		if err != nil {
			t.Fatalf("NSCHECK_MUTANTS_ONLY: %v", err)
		}
		var keep []*Mutant
		for _, m := range ms {
			if only.MatchString(m.Name) {
				keep = append(keep, m)
			}
		}
		ms = keep
	}
	out := envOr("NSCHECK_MUTANTS_OUT", "../../bin/mutants")
	if err := os.MkdirAll(filepath.Join(out, "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := nscheckBinary(t)
	catalog := listCatalog(t, bin)
	timeout, err := time.ParseDuration(envOr("NSCHECK_MUTANTS_TIMEOUT", "8m"))
	if err != nil {
		t.Fatalf("NSCHECK_MUTANTS_TIMEOUT: %v", err)
	}
	jobs := runtime.NumCPU()
	if j := os.Getenv("NSCHECK_MUTANTS_JOBS"); j != "" {
		fmt.Sscan(j, &jobs)
	}
	cache := envOr("NSCHECK_MUTANTS_CACHE", DefaultCache)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(cache, "build.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	b, err := NewBuilder(cache, "../../mutants/kernel.config", jobs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel source %s %s, build log %s", SourcePackage, b.Version, logPath)

	// The images are built one after the other in the background while the
	// kernels already built boot: a boot under TCG and the next build
	// overlap instead of taking turns.
	type kernel struct {
		name  string
		m     *Mutant
		image string
		err   string
	}
	kernels := []*kernel{{name: "base"}}
	for _, m := range ms {
		kernels = append(kernels, &kernel{name: m.Name, m: m})
	}
	ready := make(chan *kernel, len(kernels))
	go func() {
		defer close(ready)
		for _, k := range kernels {
			patch := ""
			if k.m != nil {
				patch = k.m.Patch
			}
			start := time.Now()
			if os.Getenv("NSCHECK_MUTANTS_REJUDGE") == "1" {
				ready <- k
				continue
			}
			img, built, err := b.Image(ctx, k.name, patch)
			switch {
			case err != nil:
				k.err = err.Error()
			case built:
				t.Logf("%s: built in %.0fs -> %s", k.name, time.Since(start).Seconds(), img)
			default:
				t.Logf("%s: cached %s", k.name, img)
			}
			k.image = img
			ready <- k
		}
	}()

	// Up to NSCHECK_MUTANTS_BOOTS kernels boot at once (default 1): on a
	// machine other tenants keep busy, parallel boots are what finishes
	// the run in time; each guest has its own deadline.
	boots := 1
	if n := os.Getenv("NSCHECK_MUTANTS_BOOTS"); n != "" {
		fmt.Sscan(n, &boots)
	}
	sem := make(chan struct{}, max(1, boots))
	rows := make([]*Row, len(kernels))
	var mu sync.Mutex
	scorePath := filepath.Join(out, "score.md")
	var wg sync.WaitGroup
	i := 0
	for k := range ready {
		row := &Row{Name: k.name, Mutant: k.m, Err: k.err}
		idx := i
		i++
		sem <- struct{}{}
		wg.Add(1)
		go func() { // t.Run may be called from several goroutines at once
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(k.name, func(t *testing.T) {
				defer func() {
					mu.Lock()
					rows[idx] = row
					// Rewritten after every kernel: a run cut short keeps its score so far.
					writeScore(t, scorePath, rows)
					mu.Unlock()
				}()
				bootAndJudge(t, ctx, k.name, k.image, k.err, k.m, row, bin, out, catalog, base, timeout)
			})
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("score -> %s\n%s", scorePath, ScoreTable(done(rows)))
}

func bootAndJudge(t *testing.T, ctx context.Context, name, image, buildErr string, m *Mutant, row *Row,
	bin, out string, catalog []Entry, base *Base, timeout time.Duration) {
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	start := time.Now()
	keep := filepath.Join(out, "reports", name+".json")
	var rep *report.Report
	var err error
	if os.Getenv("NSCHECK_MUTANTS_REJUDGE") == "1" {
		rep, err = report.ReadFile(keep)
	} else {
		rep, err = bootReport(ctx, bin, image, keep, timeout)
	}
	if err != nil {
		row.Err = err.Error()
		t.Fatal(err)
	}
	t.Logf("booted in %.0fs: %d passed, %d failed, %d skipped", time.Since(start).Seconds(),
		rep.Summary.Passed, rep.Summary.Failed, rep.Summary.Skipped)
	v := Judge(rep, catalog, m, base)
	row.Verdict = v
	for _, p := range v.Pending {
		t.Logf("pending: property %s not in catalog", p)
	}
	for _, u := range v.Untrusted {
		t.Logf("untrusted (accepted, %v broken): %s", m.Untrusted, u)
	}
	for _, m := range v.Missed {
		t.Errorf("missed: %s", m)
	}
	for _, u := range v.Unexpected {
		t.Errorf("unexpected: %s", u)
	}
	for _, e := range v.Errors {
		t.Errorf("run error: %s", e)
	}
	for _, e := range v.ExpectedErrors {
		t.Logf("declared run error (the bug's own doing): %s", e)
	}
	if len(v.Caught) > 0 {
		t.Logf("caught by %s", strings.Join(v.Caught, ", "))
	}
	if v.OK() && v.Score() == "pending" {
		t.Skipf("pending: nothing in the catalog can catch it yet (%s)", strings.Join(v.Pending, ", "))
	}
}

// done lists the rows of the kernels judged so far, in the set's order.
func done(rows []*Row) []Row {
	var out []Row
	for _, r := range rows {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out
}

func writeScore(t *testing.T, path string, rows []*Row) {
	text := "# Mutant kernels\n\n"
	if d := done(rows); len(d) < len(rows) {
		text += fmt.Sprintf("(%d of %d kernels so far)\n\n", len(d), len(rows))
	}
	if err := os.WriteFile(path, []byte(text+ScoreTable(done(rows))), 0o644); err != nil {
		t.Error(err)
	}
}

// bootReport boots one kernel with `nscheck vm` (TCG: KVM here is not a
// real one) and reads the report it wrote, kept at keep.
func bootReport(ctx context.Context, bin, image, keep string, timeout time.Duration) (*report.Report, error) {
	dir, err := os.MkdirTemp("", "nscheck-mutant-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "vm", "--kernel", image, "--out", dir, "--accel", "tcg",
		"--timeout", timeout.String())
	outb, runErr := cmd.CombinedOutput()
	reps, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(reps) != 1 {
		return nil, fmt.Errorf("nscheck vm --kernel %s wrote %d reports (%v):\n%s", image, len(reps), runErr, outb)
	}
	rep, err := report.ReadFile(reps[0])
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(reps[0]); err == nil {
		os.WriteFile(keep, b, 0o644)
	}
	return rep, nil
}

// nscheckBinary is NSCHECK_BIN, or a static nscheck built for this test.
func nscheckBinary(t *testing.T) string {
	if bin := os.Getenv("NSCHECK_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "nscheck")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/nscheck")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nscheck: %v\n%s", err, out)
	}
	return bin
}

// listCatalog is the catalog of the nscheck that boots: the one whose
// properties the reports hold.
func listCatalog(t *testing.T, bin string) []Entry {
	out, err := exec.Command(bin, "list", "--json").Output()
	if err != nil {
		t.Fatalf("%s list --json: %v", bin, err)
	}
	var cat []Entry
	if err := json.Unmarshal(out, &cat); err != nil {
		t.Fatalf("%s list --json: %v", bin, err)
	}
	return cat
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
