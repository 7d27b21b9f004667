package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a fake QEMU: with fakeQEMUEnv set it plays the
// scenario named there against the report socket on its command line.
const fakeQEMUEnv = "NSCHECK_FAKE_QEMU"

func TestMain(m *testing.M) {
	if sc := os.Getenv(fakeQEMUEnv); sc != "" {
		os.Exit(fakeQEMU(sc, os.Args[1:]))
	}
	os.Exit(m.Run())
}

const goodReport = `{"schema":"nscheck/v1","kernel":{"release":"6.1.0-fake"},"results":[{"id":"uts.distinct-ns","state":"passed"}]}`

func fakeQEMU(scenario string, args []string) int {
	var sock string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "socket,id=report,path="); ok {
			sock = p
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu: connect:", err)
		return 1
	}
	defer c.Close()
	fmt.Println("\x1b[2JSeaBIOS (fake)\r")
	fmt.Println("[    0.000000] Linux version 6.1.0-fake")
	switch scenario {
	case "ok":
		c.Write([]byte("line noise"))
		WriteFrame(c, Hello, []byte("6.1.0-fake"))
		WriteFrame(c, ReportFrame, []byte(goodReport))
		return 0
	case "exit-after-report": // the report and the exit race
		WriteFrame(c, Hello, []byte("6.1.0-fake"))
		WriteFrame(c, ReportFrame, []byte(goodReport))
		c.Close()
		return 0
	case "panic":
		WriteFrame(c, Hello, []byte("6.1.0-fake"))
		fmt.Println("[    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000002")
		return 0 // QEMU exits 0 after a guest panic
	case "guest-error":
		WriteFrame(c, Hello, []byte("6.1.0-fake"))
		WriteFrame(c, ErrorFrame, []byte("mount proc on /proc: EPERM"))
		time.Sleep(time.Minute)
	case "bad-report":
		WriteFrame(c, Hello, []byte("6.1.0-fake"))
		WriteFrame(c, ReportFrame, []byte(`{"schema":"other/v9"}`))
		time.Sleep(time.Minute)
	case "qemu-error":
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -accel kvm: failed to initialize kvm: No such file or directory")
		return 1
	case "hang-before-init", "hang-after-init":
		if scenario == "hang-after-init" {
			WriteFrame(c, Hello, []byte("6.1.0-fake"))
		}
		time.Sleep(time.Minute)
	}
	return 0
}

func fakeBoot(t *testing.T, scenario string, o BootOptions) (*Outcome, *BootError, time.Duration) {
	t.Helper()
	t.Setenv(fakeQEMUEnv, scenario)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	start := time.Now()
	out, err := Boot(context.Background(), Config{QEMU: exe, MemoryMB: 128, CPUs: 1, Accel: AccelTCG}, o)
	took := time.Since(start)
	var be *BootError
	if err != nil && !errors.As(err, &be) {
		t.Fatalf("%s: not a BootError: %v", scenario, err)
	}
	return out, be, took
}

func TestBootReport(t *testing.T) {
	for _, sc := range []string{"ok", "exit-after-report"} {
		running := false
		out, be, _ := fakeBoot(t, sc, BootOptions{Running: func() { running = true }})
		if be != nil {
			t.Fatalf("%s: %v %q", sc, be, be.Console)
		}
		if out.Report.Kernel.Release != "6.1.0-fake" || out.Report.Summary.Passed != 1 || !running || out.Hello <= 0 {
			t.Errorf("%s: outcome %+v running %v", sc, out, running)
		}
	}
}

func TestBootFailures(t *testing.T) {
	for _, c := range []struct {
		scenario, reason string
		started          bool
		opts             BootOptions
	}{
		{"panic", "the kernel panicked: Attempted to kill init! exitcode=0x00000002", true, BootOptions{}},
		{"guest-error", "the guest gave up: mount proc on /proc: EPERM", true, BootOptions{}},
		{"bad-report", `the guest's report: not an nscheck/v1 report: schema is "other/v9"`, true, BootOptions{}},
		{"qemu-error", "qemu exited with status 1: qemu-system-x86_64: -accel kvm: failed to initialize kvm: No such file or directory", false, BootOptions{}},
		{"hang-before-init", "the kernel did not start init within 2s (hung?)", false, BootOptions{Timeout: 2 * time.Second}},
		{"hang-after-init", "no report from the guest within 2s (hung?)", true, BootOptions{Timeout: 2 * time.Second}},
		{"hang-before-init", "the kernel did not start init within 1s", false, BootOptions{HelloTimeout: time.Second}},
	} {
		_, be, took := fakeBoot(t, c.scenario, c.opts)
		if be == nil {
			t.Errorf("%s: no error", c.scenario)
			continue
		}
		if be.Reason != c.reason || be.Started != c.started {
			t.Errorf("%s: reason %q started %v\nwant   %q started %v", c.scenario, be.Reason, be.Started, c.reason, c.started)
		}
		if len(be.Console) == 0 || be.Console[0] != "SeaBIOS (fake)" {
			t.Errorf("%s: console tail %q", c.scenario, be.Console)
		}
		if took > 20*time.Second { // a bound, not a timing assertion: the fake sleeps a minute
			t.Errorf("%s: Boot returned after %v: the deadline did not end it", c.scenario, took)
		}
	}
}

func TestConsoleTail(t *testing.T) {
	c := &console{}
	for i := range 200 {
		c.add(fmt.Sprintf("line %d", i))
	}
	c.add("[ 1.0] Kernel panic - not syncing: first")
	c.add("[ 1.1] Kernel panic - not syncing: second")
	tail := c.tail()
	if len(tail) != consoleLines || tail[len(tail)-1] != "[ 1.1] Kernel panic - not syncing: second" {
		t.Errorf("tail %q", tail)
	}
	if c.panicLine() != "first" {
		t.Errorf("panic line %q", c.panicLine())
	}
	if got := printableLine("\x1b[2J\x1b[?7lSeaBIOS\x00 x\r\n"); got != "SeaBIOS x" {
		t.Errorf("printableLine: %q", got)
	}
}
