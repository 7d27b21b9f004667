package helper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is its own helper, as nscheck is.
func TestMain(m *testing.M) {
	IgnoreCloneFlagsFromEnv() // TestGuardStopsNestedHelpers
	Main()
	os.Exit(m.Run())
}

type echoFacts struct {
	PID  int    `json:"pid"`
	Echo string `json:"echo"`
}

func init() {
	Handle("test.echo", func(s string) (any, error) { return echoFacts{PID: os.Getpid(), Echo: s}, nil })
	Handle("test.fail", func(struct{}) (any, error) { return nil, Fail("sethostname", unix.EPERM) })
	Handle("test.hang", func(struct{}) (any, error) { time.Sleep(time.Hour); return nil, nil })
	Handle("test.crash", func(struct{}) (any, error) {
		fmt.Fprintln(os.Stderr, "test.crash: going down")
		os.Exit(7)
		return nil, nil
	})
	Handle("test.ids", func(struct{}) (any, error) {
		m, err := os.ReadFile("/proc/self/uid_map")
		return idFacts{UID: os.Getuid(), UIDMap: strings.Join(strings.Fields(string(m)), " ")}, err
	})
	Handle("test.started-for", func(names []string) (any, error) {
		var out []bool
		for _, n := range names {
			out = append(out, StartedFor(n))
		}
		return out, nil
	})
}

type idFacts struct {
	UID    int    `json:"uid"`
	UIDMap string `json:"uid_map"`
}

func TestStartedFor(t *testing.T) {
	if StartedFor("test.started-for") {
		t.Error("the test process itself is no helper, yet StartedFor says it is")
	}
	var got []bool
	if err := Run(context.Background(), Spec{Action: "test.started-for", Args: []string{"test.started-for", "test.echo", ""}}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0] || got[1] || got[2] {
		t.Errorf("inside the helper, StartedFor(own action, another, \"\") = %v, want [true false false]", got)
	}
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create namespaces without a user namespace")
	}
}

func TestRunAnswers(t *testing.T) {
	var f echoFacts
	if err := Run(context.Background(), Spec{Action: "test.echo", Args: "hi"}, &f); err != nil {
		t.Fatal(err)
	}
	if f.Echo != "hi" || f.PID == os.Getpid() {
		t.Errorf("facts = %+v", f)
	}
	assertNoneLive(t)
}

func TestPIDNamespaceHelperIsInit(t *testing.T) {
	needRoot(t)
	p, err := Start(context.Background(), Spec{Action: "test.echo", Cloneflags: unix.CLONE_NEWPID, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.InnerPID() != 1 {
		t.Errorf("inner pid = %d, want 1", p.InnerPID())
	}
	// Held: the host can still see it.
	if _, err := os.Stat("/proc/" + itoa(p.PID()) + "/ns/pid"); err != nil {
		t.Errorf("held helper not visible: %v", err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(p.PID(), 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("released helper %d still exists (%v)", p.PID(), err)
	}
	assertNoneLive(t)
}

func TestActionErrorCrossesBoundary(t *testing.T) {
	err := Run(context.Background(), Spec{Action: "test.fail"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Op != "sethostname" || !errors.Is(err, unix.EPERM) {
		t.Fatalf("err = %#v, want sethostname EPERM", err)
	}
	assertNoneLive(t)
}

func TestHungHelperTimesOut(t *testing.T) {
	start := time.Now()
	err := Run(context.Background(), Spec{Action: "test.hang", Timeout: 300 * time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
	assertNoneLive(t)
}

func TestCancelledContextKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := Run(ctx, Spec{Action: "test.hang", Timeout: time.Minute}, nil)
	if err == nil {
		t.Fatal("a hung helper answered")
	}
	assertNoneLive(t)
}

func TestCrashIsHarnessError(t *testing.T) {
	err := Run(context.Background(), Spec{Action: "test.crash"}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited without answering") || !strings.Contains(err.Error(), "going down") {
		t.Fatalf("err = %v, want no answer, with the helper's stderr", err)
	}
	assertNoneLive(t)
}

// A helper in a user namespace that maps root to this process is started
// by vforkexec (the child maps itself), as helpers without a user
// namespace are; helpers with other maps by os/exec: the protocol,
// deadlines, stderr and reaping are the same.
func TestUserNamespaceHelper(t *testing.T) {
	uids, gids := RootMapping()
	user := Spec{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS, UIDMappings: uids, GIDMappings: gids}
	with := func(action string) Spec { s := user; s.Action = action; return s }

	var ids idFacts
	if err := Run(context.Background(), with("test.ids"), &ids); err != nil {
		t.Fatal(err)
	}
	if want := "0 " + itoa(os.Geteuid()) + " 1"; ids.UID != 0 || ids.UIDMap != want {
		t.Errorf("helper's ids %+v, want uid 0 and uid_map %q", ids, want)
	}

	held := with("test.echo")
	held.Hold = true
	p, err := Start(context.Background(), held)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + itoa(p.PID()) + "/ns/user"); err != nil {
		t.Errorf("held helper not visible: %v", err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}

	err = Run(context.Background(), with("test.crash"), nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "going down") {
		t.Errorf("crash: err = %v, want exit status 7 and the helper's stderr", err)
	}
	hang := with("test.hang")
	hang.Timeout = 300 * time.Millisecond
	if err := Run(context.Background(), hang, nil); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hang: err = %v, want a timeout", err)
	}
	assertNoneLive(t)
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("a child is left: wait4 gave %v", err)
	}
}

func TestUnknownAction(t *testing.T) {
	err := Run(context.Background(), Spec{Action: "no.such"}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("err = %v", err)
	}
}

func TestCloneRefusalIsStartError(t *testing.T) {
	// CLONE_NEWUSER together with CLONE_FS is always EINVAL: a refusal by
	// the kernel, reported as a StartError with its errno.
	_, err := Start(context.Background(), Spec{Action: "test.echo", Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_FS})
	var se *StartError
	if !errors.As(err, &se) || Errno(err) != unix.EINVAL {
		t.Fatalf("err = %v, want StartError EINVAL", err)
	}
	assertNoneLive(t)
}

// Helpers vforkexec leaves to os/exec: a time namespace, maps that the
// parent writes, and Spec.Fork (which needs a user namespace).
func TestExecPathHelpers(t *testing.T) {
	needRoot(t)
	identity := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	root, rootGID := RootMapping()
	for name, s := range map[string]Spec{
		"time namespace": {Cloneflags: unix.CLONE_NEWTIME},
		"identity maps":  {Cloneflags: unix.CLONE_NEWUSER, UIDMappings: identity, GIDMappings: identity},
		"fork":           {Cloneflags: unix.CLONE_NEWUSER, UIDMappings: root, GIDMappings: rootGID, Fork: true},
	} {
		s.Action = "test.ids"
		var ids idFacts
		if err := Run(context.Background(), s, &ids); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ids.UID != 0 {
			t.Errorf("%s: helper's ids %+v, want uid 0", name, ids)
		}
	}
	if err := Run(context.Background(), Spec{Action: "test.echo", Fork: true}, nil); err == nil || !strings.Contains(err.Error(), "Fork needs CLONE_NEWUSER") {
		t.Errorf("Fork without a user namespace: %v", err)
	}
	assertNoneLive(t)
}

func assertNoneLive(t *testing.T) {
	t.Helper()
	if n := Live(); n != 0 {
		t.Errorf("%d helpers left unreaped", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
