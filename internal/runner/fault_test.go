package runner_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/runner"
	_ "github.com/nscheck/nscheck/suites/ipc"
	_ "github.com/nscheck/nscheck/suites/mnt"
	_ "github.com/nscheck/nscheck/suites/uts"
)

// The test binary is its own helper; a helper started by a wrapper that
// injects a fault (helper.IgnoreCloneFlags) inherits it here.
func TestMain(m *testing.M) {
	helper.IgnoreCloneFlagsFromEnv()
	helper.Main()
	os.Exit(m.Run())
}

type faultArgs struct {
	Ignore uintptr `json:"ignore"`
	Labels string  `json:"labels"`
}

type faultFacts struct {
	Report       *report.Report `json:"report"`
	MountsBefore string         `json:"mounts_before"`
	MountsAfter  string         `json:"mounts_after"`
}

// wrapperFlags give the wrapper, which plays the host of the faulty run,
// mount, UTS and IPC namespaces of its own: if a guard failed, what the
// run changed would be those, never this machine's.
const wrapperFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

func init() {
	// runnertest.faulty-kernel runs the catalog (a label-filtered part) as
	// nscheck run does, on a "kernel" that ignores a.Ignore: every helper
	// it spawns, and theirs, lose those flags at clone.
	helper.Handle("runnertest.faulty-kernel", func(a faultArgs) (any, error) {
		// Its own mounts are private, so that nothing mounted here could
		// reach the machine even if a guard failed.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return nil, helper.Fail("mount --make-rprivate /", err)
		}
		var f faultFacts
		before, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return nil, err
		}
		helper.IgnoreCloneFlags(a.Ignore)
		f.Report, err = runner.Run(runner.Options{LabelFilter: a.Labels, Procs: 2})
		helper.IgnoreCloneFlags(0)
		if err != nil {
			return nil, err
		}
		after, err := os.ReadFile("/proc/self/mountinfo")
		f.MountsBefore, f.MountsAfter = string(before), string(after)
		return f, err
	})
}

// faultyRun runs the catalog's labels on a kernel that ignores flags, and
// checks that nothing of the (wrapper's) host changed and a report came.
func faultyRun(t *testing.T, ignore uintptr, labels string) *report.Report {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the wrapper that plays the host gets namespaces without a user namespace")
	}
	hostMounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var f faultFacts
	s := helper.Spec{Action: "runnertest.faulty-kernel", Args: faultArgs{Ignore: ignore, Labels: labels}, Cloneflags: wrapperFlags, Timeout: 3 * time.Minute}
	if err := helper.Run(context.Background(), s, &f); err != nil {
		t.Fatal(err)
	}
	if f.Report == nil || len(f.Report.Results) == 0 {
		t.Fatalf("no report, or one without results: %+v", f.Report)
	}
	if testing.Verbose() {
		var b strings.Builder
		_ = report.WriteText(&b, f.Report, report.TextOptions{})
		t.Log("the report:\n" + b.String())
	}
	if f.MountsBefore != f.MountsAfter {
		t.Errorf("the run changed the mounts of the namespace it was observed from:\nbefore:\n%s\nafter:\n%s", f.MountsBefore, f.MountsAfter)
	}
	if after, err := os.ReadFile("/proc/self/mountinfo"); err != nil || string(after) != string(hostMounts) {
		t.Errorf("the machine's mounts changed (%v)", err)
	}
	for _, e := range f.Report.Errors {
		if strings.HasPrefix(e, "host ") {
			t.Errorf("run error: %s", e)
		}
	}
	return f.Report
}

// On a kernel that ignores CLONE_NEWNS the control's sandbox must not
// touch the host: its guard stops it before it makes / private or mounts
// a proc. The mount properties fail as isolation broken, with the guard's
// evidence; every other property is untrusted (its control needs the
// sandbox), said once at run level, and none fails.
func TestKernelIgnoringNewNS(t *testing.T) {
	rep := faultyRun(t, unix.CLONE_NEWNS, "ns:mnt || ns:uts || ns:ipc")
	const cause = "the kernel did not create a new mount namespace"
	for _, r := range rep.Results {
		switch {
		case r.Namespace == "mnt":
			if r.State != report.Failed || !strings.HasPrefix(r.Reason, "isolation broken: "+cause) {
				t.Errorf("%s: %s (%s), want failed: isolation broken: %s", r.ID, r.State, r.Reason, cause)
			}
			if inside, _ := r.Evidence["inside"].(map[string]any); inside == nil || inside["mnt namespace"] == nil {
				t.Errorf("%s: no evidence of the namespace the helper was left in: %v", r.ID, r.Evidence)
			}
		case r.State == report.Failed:
			t.Errorf("%s failed on a kernel whose only fault is CLONE_NEWNS: %s", r.ID, r.Reason)
		case r.State == report.Skipped && r.Untrusted != cause:
			t.Errorf("%s: skipped (%s) but not marked untrusted for the mount namespace", r.ID, r.Reason)
		}
	}
	if len(rep.Untrusted) != 1 || rep.Untrusted[0].Cause != cause || len(rep.Untrusted[0].Properties) == 0 {
		t.Errorf("run-level untrusted = %+v, want the mount namespace once", rep.Untrusted)
	}
}

// A kernel that ignores CLONE_NEWUTS, which the harness does not rely on:
// the UTS properties fail as isolation broken, the others are unaffected
// (passed, their controls detected, as on a sound kernel).
func TestKernelIgnoringNewUTS(t *testing.T) {
	rep := faultyRun(t, unix.CLONE_NEWUTS, "ns:uts || ns:ipc || ns:mnt")
	for _, r := range rep.Results {
		switch {
		case r.Namespace == "uts" && r.State != report.Failed:
			t.Errorf("%s: %s (%s), want failed", r.ID, r.State, r.Reason)
		case r.Namespace == "uts" && !strings.HasPrefix(r.Reason, "isolation broken: "):
			t.Errorf("%s: %s, want isolation broken", r.ID, r.Reason)
		case r.Namespace != "uts" && r.State != report.Passed:
			t.Errorf("%s: %s (%s), want passed as on a sound kernel", r.ID, r.State, r.Reason)
		}
	}
	if !slices.ContainsFunc(rep.Results, func(r report.Result) bool {
		return strings.HasPrefix(r.Reason, "isolation broken: the kernel did not create a new UTS namespace")
	}) {
		t.Error("no property says the kernel did not create a new UTS namespace")
	}
	if len(rep.Untrusted) != 0 {
		t.Errorf("untrusted = %+v: the harness does not rely on UTS namespaces", rep.Untrusted)
	}
}
