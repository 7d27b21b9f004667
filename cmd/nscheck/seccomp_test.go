package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsdeny"
	"github.com/nscheck/nscheck/internal/report"
)

// seccompEnv makes the test binary, before it acts as nscheck, install a
// seccomp filter like the default profile of container engines (nsdeny):
// clone and unshare with any CLONE_NEW* flag and setns fail with EPERM,
// clone3 (whose flags a filter cannot read) with ENOSYS.
const seccompEnv = "NSCHECK_TEST_SECCOMP"

func TestSeccompDeniedNamespacesAreSkippedNotPassed(t *testing.T) {
	needRoot(t)
	res := nscheckEnv(t, []string{seccompEnv + "=1"}, "run", "--json", "-")
	if res.code != exitNothing {
		t.Fatalf("exit %d, want %d (nothing may fail, nothing was verified):\n%s", res.code, exitNothing, res.stderr)
	}
	rep, err := report.Decode(strings.NewReader(res.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rep.Results {
		if r.State != report.Skipped {
			t.Errorf("%s: %s under a seccomp filter that denies namespaces (%s)", r.ID, r.State, r.Reason)
		}
		if !strings.Contains(r.Reason, "seccomp") {
			t.Errorf("%s: skip reason does not name seccomp: %q", r.ID, r.Reason)
		}
	}
}

// TestMain's hook for the filter runs before dispatch; see main_test.go.
func maybeInstallFilter() {
	if os.Getenv(seccompEnv) != "1" {
		return
	}
	if err := nsdeny.Install(unix.EPERM); err != nil {
		fmt.Fprintln(os.Stderr, "test: install seccomp filter:", err)
		os.Exit(3)
	}
}
