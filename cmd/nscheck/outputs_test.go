package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/report"
	"github.com/nscheck/nscheck/internal/schematest"
)

// One run writes every face of the report; each is what its reader
// expects, and the host name given with --host is in all of them.
func TestRunWritesEveryOutput(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }
	res := nscheck(t, "run", "-q", "--host", "node-7", "--focus", `uts\.(hostname-local|distinct-ns)`,
		"--json", out("r.json"), "--html", out("r.html"), "--markdown", out("r.md"), "--prometheus", out("r.prom"))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	rep := readReport(t, out("r.json"))
	if rep.Host != "node-7" || len(rep.Results) == 0 {
		t.Fatalf("report host %q, %d results", rep.Host, len(rep.Results))
	}
	if !strings.Contains(res.stdout, "host node-7") {
		t.Errorf("text report does not name the host:\n%s", res.stdout)
	}

	page := readString(t, out("r.html"))
	md := readString(t, out("r.md"))
	for _, r := range rep.Results {
		for name, text := range map[string]string{"html": page, "markdown": md} {
			if !strings.Contains(text, r.ID) {
				t.Errorf("%s lacks %s", name, r.ID)
			}
		}
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, `id="ns-uts"`) {
		t.Errorf("not the HTML report:\n%.300s", page)
	}
	if !strings.Contains(md, "## nscheck: node-7/") {
		t.Errorf("not the markdown report:\n%s", md)
	}

	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(readString(t, out("r.prom"))))
	if err != nil {
		t.Fatalf("prometheus file: %v", err)
	}
	if n := len(fams["nscheck_property_passed"].GetMetric()); n != len(rep.Results) {
		t.Errorf("%d nscheck_property_passed samples for %d results", n, len(rep.Results))
	}
	// Atomic writes leave no temporary file behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("files in the output directory: %v", entries)
	}
}

func TestOutputErrorsFail(t *testing.T) {
	needRoot(t)
	// A file in a missing directory is bad input: exit 2 before any work.
	res := nscheck(t, "run", "-q", "--focus", "uts.distinct-ns", "--prometheus", "/nonexistent/dir/x.prom")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--prometheus /nonexistent/dir/x.prom") {
		t.Errorf("missing directory: exit %d, stderr %q", res.code, res.stderr)
	}
	// A file that cannot be written after the run (here: a directory is in
	// the way) fails the run.
	res = nscheck(t, "run", "-q", "--focus", "uts.distinct-ns", "--prometheus", t.TempDir())
	if res.code != exitFail || !strings.Contains(res.stderr, "write --prometheus") {
		t.Errorf("unwritable file: exit %d, stderr %q", res.code, res.stderr)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openPTY opens a pseudo-terminal pair: nscheck writes to the terminal
// (tty), the test reads what a person would see from the master.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (/dev/ptmx: %v)", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	return m, s
}

// nscheckOnTerminal runs nscheck with stdout and stderr on a terminal and
// returns everything it wrote there (with the terminal's \r\n line ends).
func nscheckOnTerminal(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	master, tty := openPTY(t)
	defer master.Close()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), cliEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var out bytes.Buffer
	_, err := io.Copy(&out, master) // EIO once the last writer is gone
	if err != nil && !errors.Is(err, unix.EIO) {
		t.Errorf("read terminal: %v", err)
	}
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode(), out.String()
}

// On a terminal: colours, and a live progress line that is erased before
// the report; NO_COLOR and -q are respected.
func TestTerminalOutput(t *testing.T) {
	needRoot(t)
	env := []string{"NO_COLOR="}
	code, screen := nscheckOnTerminal(t, env, "run", "--focus", `uts\.(hostname-local|distinct-ns)`)
	if code != 0 {
		t.Fatalf("exit %d:\n%q", code, screen)
	}
	for _, want := range []string{
		"\r\x1b[Knscheck: 1 done (1 passed, 0 failed, 0 skipped), last \x1b[32mPASS\x1b[0m uts.",
		"\r\x1b[Knscheck: 2 done (2 passed, 0 failed, 0 skipped)",
		"\r\x1b[Knscheck: kernel ", // the line is erased, then the report
		"\x1b[32mPASS\x1b[0m  uts.hostname-local",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q:\n%q", want, screen)
		}
	}

	_, screen = nscheckOnTerminal(t, []string{"NO_COLOR=1"}, "run", "--focus", `uts\.(hostname-local|distinct-ns)`)
	if strings.Contains(screen, "\x1b[3") || !strings.Contains(screen, "PASS  uts.hostname-local") {
		t.Errorf("NO_COLOR=1 still coloured:\n%q", screen)
	}
	if !strings.Contains(screen, "nscheck: 2 done") {
		t.Errorf("no progress line without colour:\n%q", screen)
	}

	_, screen = nscheckOnTerminal(t, env, "run", "-q", "--focus", `uts\.(hostname-local|distinct-ns)`)
	if strings.Contains(screen, "done (") || strings.Contains(screen, "uts.hostname-local") || !strings.Contains(screen, "2 passed, 0 failed") {
		t.Errorf("-q shows progress or passes:\n%q", screen)
	}
}

// Piped output has neither colour nor progress; -v adds the evidence.
func TestPipedVerbose(t *testing.T) {
	needRoot(t)
	res := nscheck(t, "run", "-v", "--focus", "uts.hostname-local")
	if res.code != 0 {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, "\x1b[") || strings.Contains(res.stderr, "done (") {
		t.Errorf("escape codes or progress on a pipe:\n%q\n%q", res.stdout, res.stderr)
	}
	for _, want := range []string{"        control: {", "        host: {", "        inside: {\"hostname\":"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("-v lacks %q:\n%s", want, res.stdout)
		}
	}
}

// readReport reads a report that a test made nscheck write, checking it
// against the JSON Schema first.
func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := schematest.Validate(data); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rep, err := report.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A run that matches nothing still writes a valid report (results: []),
// and exits 4: it verified nothing.
func TestEmptyRunReportValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	res := nscheck(t, "run", "--no-guard", "--focus", "no-such-property", "--json", path)
	if res.code != exitNothing || !strings.Contains(res.stderr, "no property matched") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if rep := readReport(t, path); len(rep.Results) != 0 {
		t.Errorf("%d results", len(rep.Results))
	}
}

// The one table of outputs gives run and matrix their flags: every format
// run has, matrix has too, but JUnit and Prometheus (a grid has no test
// cases and no metrics); text is no flag (stdout).
func TestOutputFlagsFromTable(t *testing.T) {
	flagsOf := func(grid bool) []string {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		addOutputFlags(fs, grid)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		return names
	}
	if got := strings.Join(flagsOf(false), ","); got != "html,json,junit,markdown,prometheus" {
		t.Errorf("run's output flags: %s", got)
	}
	if got := strings.Join(flagsOf(true), ","); got != "html,json,markdown" {
		t.Errorf("matrix's output flags: %s", got)
	}
}

// writeOutputs writes reps through the table, every file flag of the
// command set, and returns each format's output (text included).
func writeOutputs(t *testing.T, grid bool, reps []*report.Report) map[string]string {
	t.Helper()
	dir := t.TempDir()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	o := addOutputFlags(fs, grid)
	for name := range o.paths {
		if err := fs.Set(name, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The text output goes to stdout: catch it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	werr := o.write(reps, textStyle{}, true)
	os.Stdout = stdout
	w.Close()
	text, _ := io.ReadAll(r)
	r.Close()
	if werr != nil {
		t.Fatal(werr)
	}
	out := map[string]string{textOutput: string(text)}
	for name := range o.paths {
		out[name] = readString(t, filepath.Join(dir, name))
	}
	return out
}

func fixtureReports(t *testing.T, names ...string) []*report.Report {
	var reps []*report.Report
	for _, name := range names {
		reps = append(reps, readReport(t, filepath.Join("..", "..", "fixtures", "reports", name+".json")))
	}
	return reps
}

// nscheck matrix labels its columns the same way in every format: the
// kernel release for reports of one host or of VMs, the host for a fleet
// on one kernel, host/release otherwise (render.ColumnNames).
func TestGridColumnNamesAgree(t *testing.T) {
	for _, c := range []struct {
		reports []string
		want    []string
	}{
		{[]string{"root", "rootless"}, []string{"ci-root", "ci-rootless"}},                                                               // one kernel, two hosts
		{[]string{"vm-6.1.0-57-cloud-amd64", "vm-6.12.117-cloud-amd64"}, []string{"6.1.0-57-cloud-amd64", "6.12.117+deb12-cloud-amd64"}}, // VMs
	} {
		reps := fixtureReports(t, c.reports...)
		outs := writeOutputs(t, true, reps)
		if len(outs) != 4 {
			t.Errorf("formats written: %d", len(outs))
		}
		var m struct {
			Columns []struct{ Name string } `json:"columns"`
		}
		if err := json.Unmarshal([]byte(outs["json"]), &m); err != nil {
			t.Fatalf("json grid: %v", err)
		}
		for i, want := range c.want {
			if i >= len(m.Columns) || m.Columns[i].Name != want {
				t.Errorf("json column %d: %+v, want %q", i, m.Columns, want)
			}
			heads := map[string]string{
				textOutput: "  " + want,
				"markdown": "| " + want + " |",
				"html":     "<div>" + strings.ReplaceAll(want, "+", "&#43;") + "</div>", // html/template's escape
			}
			for format, head := range heads {
				if !strings.Contains(outs[format], head) {
					t.Errorf("%s grid of %v lacks the column %q:\n%.600s", format, c.reports, head, outs[format])
				}
			}
		}
		// A longer name (host/release) is in no format: each says the same.
		for format, text := range outs {
			if strings.Contains(text, reps[0].Name()) && reps[0].Name() != c.want[0] {
				t.Errorf("%s grid names a column %q", format, reps[0].Name())
			}
		}
	}
}

// nscheck run writes one report in every format of the table.
func TestRunOutputsFromTable(t *testing.T) {
	reps := fixtureReports(t, "rootless")
	outs := writeOutputs(t, false, reps)
	checks := map[string]string{
		textOutput:   "nscheck: kernel ",
		"json":       `"schema": "nscheck/v1"`,
		"junit":      "<testsuites",
		"html":       "<!DOCTYPE html>",
		"markdown":   "## nscheck: ",
		"prometheus": "nscheck_property_passed{",
	}
	for format, want := range checks {
		if !strings.Contains(outs[format], want) {
			t.Errorf("%s lacks %q:\n%.300s", format, want, outs[format])
		}
	}
	if len(outs) != len(checks) {
		t.Errorf("%d formats written, want %d", len(outs), len(checks))
	}
}

// Flags may follow the reports, as the README and the workflow write them.
func TestMatrixFlagsAfterReports(t *testing.T) {
	dir := t.TempDir()
	html, md := filepath.Join(dir, "m.html"), filepath.Join(dir, "m.md")
	fix := func(name string) string { return filepath.Join("..", "..", "fixtures", "reports", name+".json") }
	res := nscheck(t, "matrix", fix("root"), fix("rootless"), "--html", html, "--markdown", md)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if page := readString(t, html); !strings.Contains(page, "<h1>nscheck matrix</h1>") {
		t.Errorf("html grid:\n%.300s", page)
	}
	if grid := readString(t, md); !strings.Contains(grid, "## nscheck matrix: 2 reports") {
		t.Errorf("markdown grid:\n%.300s", grid)
	}
}
