package html

import (
	"bytes"
	"encoding/json"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/render"
	"github.com/nscheck/nscheck/internal/render/rendertest"
	"github.com/nscheck/nscheck/internal/report"
)

func renderPage(t *testing.T, fill func(*bytes.Buffer) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := fill(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page must open offline: nothing fetched, nothing run.
func TestSelfContained(t *testing.T) {
	for name, p := range map[string]string{
		"report": renderPage(t, func(b *bytes.Buffer) error { return Write(b, rendertest.Broken()) }),
		"grid":   renderPage(t, func(b *bytes.Buffer) error { return WriteGrid(b, rendertest.All(t)) }),
	} {
		for _, bad := range []string{"<script", "<link", "<img", "<iframe", " src=", " href=", "url(", "@import"} {
			if strings.Contains(strings.ToLower(p), bad) {
				t.Errorf("%s page contains %q: not self-contained or injectable", name, bad)
			}
		}
		if !strings.Contains(p, "<style>") {
			t.Errorf("%s page has no embedded CSS", name)
		}
	}
}

// browser is headless Chromium (Debian's chromium package).
type browser struct{ bin string }

func chromium(t *testing.T) browser {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return browser{p}
		}
	}
	t.Skip("headless Chromium not found: install Debian's chromium package (apt-get install chromium); .ci/run does")
	return browser{}
}

// run opens file in a fresh headless browser with args added.
func (b browser) run(t *testing.T, file string, args ...string) []byte {
	t.Helper()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.Command(b.bin, append(argv, "file://"+file)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// dom is the document after load, as the browser serializes it.
func (b browser) dom(t *testing.T, file string) string {
	t.Helper()
	return string(b.run(t, file, "--dump-dom"))
}

// screenshot renders the page at width x height and decodes the PNG.
func (b browser) screenshot(t *testing.T, file, out string) image.Image {
	t.Helper()
	b.run(t, file, "--screenshot="+out, "--window-size=1280,1400")
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

func writePage(t *testing.T, name string, fill func(*os.File) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fill(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	rowRE      = regexp.MustCompile(`(?s)<tr class="result (\w+)" id="prop-([\w.-]+)" data-state="(\w+)">(.*?)</tr>`)
	sectionRE  = regexp.MustCompile(`<section class="namespace" id="ns-(\w+)"`)
	evidenceRE = regexp.MustCompile(`(?s)<details class="evidence"( open="")?><summary>evidence</summary><pre>(.*?)</pre>`)
)

// pixels counts the pixels of the screenshot that have colour c.
func pixels(img image.Image, c color.RGBA) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(b>>8) == c.B {
				n++
			}
		}
	}
	return n
}

var (
	passGreen = color.RGBA{0x1a, 0x7f, 0x37, 0xff}
	failRed   = color.RGBA{0xcf, 0x22, 0x2e, 0xff}
	skipAmber = color.RGBA{0x9a, 0x67, 0x00, 0xff}
)

// domText is s as a browser serializes a text node: only &, < and >
// escaped.
func domText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// namespaces lists the namespace types of r's results, sorted, joined by
// commas.
func namespaces(r *report.Report) string {
	seen := map[string]bool{}
	var out []string
	for _, res := range r.Results {
		if !seen[res.Namespace] {
			seen[res.Namespace] = true
			out = append(out, res.Namespace)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// What a person sees of one report: a section per namespace type, every
// property with its verdict, reason and evidence, colours that match.
func TestReportInBrowser(t *testing.T) {
	b := chromium(t)
	cases := map[string]*report.Report{"broken": rendertest.Broken()}
	for _, name := range []string{"rootless", "failing", "root"} {
		cases[name] = rendertest.Load(t, name)
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			path := writePage(t, name+".html", func(f *os.File) error { return Write(f, r) })
			dom := b.dom(t, path)

			var sections []string
			for _, m := range sectionRE.FindAllStringSubmatch(dom, -1) {
				sections = append(sections, m[1])
			}
			if got, want := strings.Join(sections, ","), namespaces(r); got != want {
				t.Errorf("sections %s, want %s", got, want)
			}
			rows := rowRE.FindAllStringSubmatch(dom, -1)
			if len(rows) != len(r.Results) {
				t.Fatalf("%d result rows in the DOM, %d in the report", len(rows), len(r.Results))
			}
			byID := map[string]report.Result{}
			for _, res := range r.Results {
				byID[res.ID] = res
			}
			for _, m := range rows {
				if res := byID[m[2]]; res.State != m[1] || m[1] != m[3] {
					t.Errorf("row %s shows %s, report says %s", m[2], m[1], res.State)
				}
			}
			for _, res := range r.Results {
				if res.Reason != "" && !strings.Contains(dom, domText(res.Reason)) {
					t.Errorf("reason of %s not shown: %q", res.ID, res.Reason)
				}
			}
			s := r.Summary
			rendertest.Contains(t, "page", dom,
				"host <strong id=\"host\">"+domText(r.Host)+"</strong>",
				"<strong id=\"kernel\">"+r.Kernel.Release+"</strong>",
				strconv.Itoa(s.Passed)+" passed</span>", strconv.Itoa(s.Failed)+" failed</span>", strconv.Itoa(s.Skipped)+" skipped</span>",
			)
			// Evidence is the report's, expandable, open for failures.
			for _, row := range rows {
				res := byID[row[2]]
				m := evidenceRE.FindStringSubmatch(row[4])
				if (m != nil) != (len(res.Evidence) > 0) {
					t.Errorf("%s: evidence block %v, evidence %v", res.ID, m != nil, res.Evidence)
					continue
				}
				if m == nil {
					continue
				}
				var v map[string]any
				if err := json.Unmarshal([]byte(html.UnescapeString(m[2])), &v); err != nil || len(v) != len(res.Evidence) {
					t.Errorf("%s: evidence block is not the report's evidence: %v", res.ID, err)
				}
				if open := m[1] != ""; open != (res.State == report.Failed) {
					t.Errorf("%s (%s): evidence open=%v", res.ID, res.State, open)
				}
			}

			img := b.screenshot(t, path, filepath.Join(t.TempDir(), "shot.png"))
			if out := os.Getenv("NSCHECK_SCREENSHOT_DIR"); out != "" {
				b.run(t, path, "--screenshot="+filepath.Join(out, "report-"+name+".png"), "--window-size=1100,900")
			}
			// Each state with results shows its colour (badges); a report
			// without failures shows no failure red anywhere.
			for _, c := range []struct {
				state string
				n     int
				col   color.RGBA
			}{{"passed", s.Passed, passGreen}, {"failed", s.Failed, failRed}, {"skipped", s.Skipped, skipAmber}} {
				got := pixels(img, c.col)
				if c.n > 0 && got < 500*c.n || c.n == 0 && got > 0 {
					t.Errorf("%d %s results but %d pixels of their colour", c.n, c.state, got)
				}
			}
		})
	}
}

// What a person sees of several reports: the property x report grid.
func TestGridInBrowser(t *testing.T) {
	b := chromium(t)
	reps := rendertest.All(t)
	path := writePage(t, "grid.html", func(f *os.File) error { return WriteGrid(f, reps) })
	dom := b.dom(t, path)
	cells := regexp.MustCompile(`<td class="cell (\w+)" data-state="(\w+)">`).FindAllStringSubmatch(dom, -1)
	if len(cells) != 3*len(reps[0].Results) {
		t.Fatalf("%d cells, want %d", len(cells), 3*len(reps[0].Results))
	}
	count := map[string]int{}
	for _, c := range cells {
		count[c[1]]++
	}
	if count["passed"] != 12 || count["failed"] != 8 || count["skipped"] != 4 {
		t.Errorf("cells by state %v", count)
	}
	for _, name := range render.ColumnNames(reps) {
		if !strings.Contains(dom, "<div>"+name+"</div>") {
			t.Errorf("no column for %s", name)
		}
	}
	if !strings.Contains(dom, "harness error in uts.hostname-local") {
		t.Error("the failing cell's reason is not in the page")
	}
	img := b.screenshot(t, path, filepath.Join(t.TempDir(), "grid.png"))
	if out := os.Getenv("NSCHECK_SCREENSHOT_DIR"); out != "" {
		b.run(t, path, "--screenshot="+filepath.Join(out, "grid.png"), "--window-size=1100,520")
	}
	for name, c := range map[string]color.RGBA{"passed": passGreen, "failed": failRed, "skipped": skipAmber} {
		if pixels(img, c) < 1000 {
			t.Errorf("the grid shows no %s colour", name)
		}
	}
}
