package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/internal/hostsnap"
	"github.com/nscheck/nscheck/internal/report"
)

// Ginkgo runs specs serially within a process and only once per process,
// so a parallel run is N child nscheck processes, each running a share of
// the selected properties, merged into one report. The parent alone takes
// the host snapshots, so the guard covers every child.

// RunParallel runs the selected properties in procs child processes of exe
// (an nscheck binary) and merges their reports.
func RunParallel(ctx context.Context, exe string, o Options, procs int, childArgs []string) (*report.Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sel, err := Selected(o)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	var before hostsnap.Snapshot
	if !o.NoGuard {
		if before, err = hostsnap.Take(); err != nil {
			return nil, fmt.Errorf("host guard: %w", err)
		}
	}
	shares := make([][]string, procs)
	for i, p := range sel {
		shares[i%procs] = append(shares[i%procs], p.ID)
	}
	var (
		mu     sync.Mutex
		merged []report.Result
		errs   []string
		wg     sync.WaitGroup
	)
	for _, ids := range shares {
		if len(ids) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := runShare(ctx, exe, ids, childArgs)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			merged = append(merged, rep.Results...)
			errs = append(errs, rep.Errors...)
		}()
	}
	wg.Wait()
	rep := &report.Report{
		Schema: report.Schema, Kernel: report.ThisKernel(), Privilege: ThisPrivilege(),
		StartedAt: started.UTC().Truncate(time.Millisecond), Results: merged, Errors: errs,
	}
	if h, err := os.Hostname(); err == nil {
		rep.Host = h
	}
	if before != nil {
		after, err := hostsnap.Take()
		if err != nil {
			return nil, fmt.Errorf("host guard: %w", err)
		}
		for _, d := range hostsnap.Diff(before, after) {
			rep.Errors = append(rep.Errors, "host changed during the run: "+d)
		}
	}
	rep.Sort()
	rep.Tally()
	rep.DurationMS = time.Since(started).Milliseconds()
	return rep, nil
}

// runShare runs one child on the given property ids.
func runShare(ctx context.Context, exe string, ids, childArgs []string) (*report.Report, error) {
	args := append([]string{"run", "--no-guard", "--json", "-", "--procs", "1",
		"--label-filter", "prop: containsAny {" + strings.Join(ids, ", ") + "}"}, childArgs...)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// On cancellation the child gets SIGTERM first, so it reports what it
	// has and kills its helpers; SIGKILL only if it does not exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	rep, err := report.Decode(&out)
	if err != nil {
		return nil, fmt.Errorf("child run of %d properties: %v (%v) %s", len(ids), err, runErr, strings.TrimSpace(errb.String()))
	}
	return rep, nil
}
