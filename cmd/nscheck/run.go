package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/ownview"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/runner"
)

func init() {
	register(&command{name: "run", summary: "run the property suites on this host and print the report (the default)", run: runCmd})
}

func runCmd(args []string) int {
	fs := newFlags("run", "run [--json FILE] [--junit FILE] [--html FILE] [--markdown FILE] [--prometheus FILE] [--host NAME] [--label-filter EXPR] [--focus REGEX] [-v|-q]")
	files := addOutputFlags(fs, false)
	host := fs.String("host", "", "name the machine in the report as `NAME` (default: the hostname; e.g. a Kubernetes node name)")
	labels := fs.String("label-filter", "", "run only properties whose labels match `EXPR` (prop:<id>, ns:<type>, needs:root|userns)")
	require := fs.String("require", "", "the properties whose labels match `EXPR` (as for --label-filter; e.g. 'needs:userns') must pass here: a skip of any of them fails the run")
	var focus stringList
	fs.Var(&focus, "focus", "run only properties whose id or title matches `REGEX` (repeatable)")
	verbose := fs.Bool("verbose", false, "print the evidence of every property")
	fs.BoolVar(verbose, "v", false, "short for --verbose")
	quiet := fs.Bool("quiet", false, "print only failures and the summary")
	fs.BoolVar(quiet, "q", false, "short for --quiet")
	noColor := fs.Bool("no-color", false, "never colour the output (NO_COLOR is honoured too)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound for the whole run")
	helperTimeout := fs.Duration("helper-timeout", helper.DefaultTimeout, "deadline of each helper process")
	ginkgoOut := fs.Bool("ginkgo-output", false, "also show Ginkgo's own console output")
	procs := fs.Int("procs", runtime.GOMAXPROCS(0), "evaluate up to `N` properties at once (1: one after another; default: the CPUs nscheck may use)")
	noGuard := fs.Bool("no-guard", false, "do not snapshot the host before and after the run (the guard fails the run when the host changed)")
	every := fs.Duration("every", 0, "run again every `D` (e.g. 24h), each run a child process, until stopped: a container's whole command, with no shell")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *every < 0 {
		return fail(exitUsage, "run: --every must be positive")
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "run: unexpected argument %q", fs.Arg(0))
	}
	if *timeout <= 0 || *helperTimeout <= 0 {
		return fail(exitUsage, "run: --timeout and --helper-timeout must be positive")
	}
	if *procs < 1 || *procs > 64 {
		return fail(exitUsage, "run: --procs must be between 1 and 64")
	}
	if err := files.check(); err != nil {
		return fail(exitUsage, "run: %v", err)
	}
	if *every > 0 && os.Getenv(repeatedEnv) == "" {
		return repeat(*every, args)
	}
	helper.DefaultTimeout = *helperTimeout
	// A /proc of another PID namespace, no scratch space: nscheck runs
	// again in a mount namespace of its own that has them, when it may.
	if code, done := ownview.Ensure(); done {
		return code
	}

	opts := runner.Options{
		LabelFilter:  *labels,
		Focus:        focus,
		Timeout:      *timeout,
		GinkgoOutput: *ginkgoOut,
		NoGuard:      *noGuard,
		Procs:        *procs,
	}
	// A live progress line while the suites run, on a terminal only.
	var live *progress
	if !*quiet && isTerminal(os.Stderr) {
		live = newProgress(os.Stderr, useColor(os.Stderr, *noColor))
		opts.OnResult = live.result
	}
	if err := opts.Validate(); err != nil {
		return fail(exitUsage, "run: %v", err)
	}
	var required []string
	if *require != "" {
		props, err := runner.Selected(runner.Options{LabelFilter: *require})
		if err != nil {
			return fail(exitUsage, "run: --require: %s", strings.TrimPrefix(err.Error(), "--label-filter: "))
		}
		if len(props) == 0 {
			return fail(exitUsage, "run: --require %q matches no property (see nscheck list)", *require)
		}
		for _, p := range props {
			required = append(required, p.ID)
		}
	}
	rep, err := runner.Run(opts)
	if live != nil {
		live.done()
	}
	if err != nil {
		return fail(exitFail, "run: %v", err)
	}
	if *host != "" {
		rep.Host = *host
	}
	rep.Require(required)
	if v := ownview.Current(); v.Fatal {
		// Once for the run, not once per property (each skips on it).
		rep.Errors = append(rep.Errors, v.Err)
	}
	if err := files.write([]*report.Report{rep}, textStyle{verbose: *verbose, quiet: *quiet}, *noColor); err != nil {
		return fail(exitFail, "%v", err)
	}
	if len(rep.Results) == 0 {
		fmt.Fprintln(os.Stderr, "nscheck: no property matched the filters")
	}
	switch {
	case !rep.OK():
		return exitFail
	case rep.NothingVerified():
		fmt.Fprintf(os.Stderr, "nscheck: %s (exit %d): see the skip reasons, or `nscheck env`\n", rep.Verified(), exitNothing)
		return exitNothing
	}
	return exitOK
}

// repeatedEnv marks the child of `nscheck run --every`: it runs once.
const repeatedEnv = "NSCHECK_RUN_ONCE"

// repeat runs `nscheck run args` (--every ignored in the child) every
// interval, until a signal stops it. Each run is a process of its own:
// Ginkgo runs a suite once per process. A failed run is reported and the
// next one still comes.
func repeat(interval time.Duration, args []string) int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	for {
		cmd := exec.Command(helper.SelfExe, append([]string{"run"}, args...)...)
		cmd.Env = append(os.Environ(), repeatedEnv+"=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		code := 0
		if err := cmd.Start(); err != nil {
			return fail(exitFail, "run --every: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			code = cmd.ProcessState.ExitCode()
			if code < 0 {
				fmt.Fprintf(os.Stderr, "nscheck: run --every: %v\n", err)
			}
		case sig := <-stop:
			// The child got the signal too when it came from a terminal; a
			// signal sent to this process alone is passed on. The child
			// stops its run and writes its report (interrupted).
			_ = cmd.Process.Signal(sig)
			<-done
			return exitFail
		}
		fmt.Fprintf(os.Stderr, "nscheck: exit %d, next run in %s\n", code, interval)
		select {
		case <-time.After(interval):
		case <-stop:
			return exitOK
		}
	}
}
