package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/report"
)

// seccompEnv makes the test binary, before it acts as nscheck, install a
// seccomp filter like the default profile of container engines: clone and
// unshare with any CLONE_NEW* flag and setns fail with EPERM, clone3 (whose
// flags a filter cannot read) with ENOSYS.
const seccompEnv = "NSCHECK_TEST_SECCOMP"

const newNSMask = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

func installDenyNamespacesFilter() error {
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
		offArg0 = 16
	)
	errno := func(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }
	prog := []unix.SockFilter{
		{Code: ldW, K: offArch},
		{Code: jeq, Jt: 1, K: unix.AUDIT_ARCH_X86_64},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW}, // other arches: not our test
		{Code: ldW, K: offNr},
		{Code: jeq, Jt: 5, K: unix.SYS_CLONE3},
		{Code: jeq, Jt: 5, K: unix.SYS_SETNS},
		{Code: jeq, Jt: 1, K: unix.SYS_CLONE},
		{Code: jeq, Jt: 0, Jf: 4, K: unix.SYS_UNSHARE},
		{Code: ldW, K: offArg0},
		{Code: jset, Jt: 1, Jf: 2, K: newNSMask},
		{Code: ret, K: errno(unix.ENOSYS)}, // clone3
		{Code: ret, K: errno(unix.EPERM)},  // setns, or CLONE_NEW* asked
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp(SET_MODE_FILTER): %w", e)
	}
	return nil
}

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
	if err := installDenyNamespacesFilter(); err != nil {
		fmt.Fprintln(os.Stderr, "test: install seccomp filter:", err)
		os.Exit(3)
	}
}
