package initorder

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// program builds a small Go program (main.go src) and returns its path;
// ldflags as `go build -ldflags` takes them.
func program(t *testing.T, src, ldflags string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build a program")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/prog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "prog")
	build := exec.Command(gobin, "build", "-ldflags="+ldflags, "-o", exe, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// prog uses regexp and go/types: packages with init work, one closure
// apart from the other.
const prog = `package main

import (
	"fmt"
	"go/types"
	"regexp"
)

var re = regexp.MustCompile("^a+$")

func main() { fmt.Println(re.MatchString("aaa"), types.Typ[types.Int].Name()) }
`

// order is the init order of the executable at path.
func order(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Plan(f, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	return p.Packages
}

// A program's order, moved: the chosen packages first, each group in the
// linker's order, the array a permutation of the original.
func TestPlanMovesChosenFirst(t *testing.T) {
	exe := program(t, prog, "")
	before := order(t, exe)
	if !slices.Contains(before, "go/types") || !slices.Contains(before, "os") {
		t.Fatalf("unexpected order of the program: %v", before)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chosen := func(pkg string) bool { return pkg == "os" || pkg == "go/types" || pkg == "nonexistent/pkg" }
	p, err := Plan(f, chosen)
	if err != nil {
		t.Fatal(err)
	}
	var wantFirst, wantRest []string
	for _, pkg := range before {
		if chosen(pkg) {
			wantFirst = append(wantFirst, pkg)
		} else {
			wantRest = append(wantRest, pkg)
		}
	}
	if want := append(wantFirst, wantRest...); !slices.Equal(p.Packages, want) || p.First != len(wantFirst) {
		t.Errorf("packages after the plan (%d first):\n%v\nwant (%d first):\n%v", p.First, p.Packages, len(wantFirst), want)
	}
	if len(p.Data) != 8*len(before) {
		t.Errorf("patch is %d bytes for %d init tasks", len(p.Data), len(before))
	}
}

// A copy with a chosen closure first starts with that closure's
// initialisers and still runs every initialiser before main: the copy of a
// small program prints the trace of the runtime in the new order.
func TestCopyRuns(t *testing.T) {
	exe := program(t, prog, "")
	dir := filepath.Dir(exe)
	gobin, _ := exec.LookPath("go")
	list := exec.Command(gobin, "list", "-deps", "regexp")
	list.Dir = dir
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps regexp: %v", err)
	}
	deps, err := ParseDeps("go " + runtime.Version() + "\n" + string(out))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(filepath.Join(dir, "copy"), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Copy(dst, exe, deps.First(runtime.Version()))
	dst.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p.First == 0 || p.First == len(p.Packages) || p.Packages[p.First-1] != "regexp" {
		t.Fatalf("regexp's closure is not first: %d first of %v", p.First, p.Packages)
	}
	run := exec.Command(dst.Name())
	run.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	run.Stderr = &stderr
	stdout, err := run.Output()
	if err != nil || string(stdout) != "true int\n" {
		t.Fatalf("the copy: %v, stdout %q\n%s", err, stdout, stderr.String())
	}
	var traced []string
	for line := range strings.Lines(stderr.String()) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" && f[1] != "runtime" { // the runtime's own runs first, apart
			traced = append(traced, f[1])
		}
	}
	if want := slices.DeleteFunc(p.Packages, func(pkg string) bool { return pkg == "runtime" }); !slices.Equal(traced, want) {
		t.Errorf("the copy initialised\n%v\nwant\n%v", traced, want)
	}
}

// What Plan refuses: no symbol table (-s), not Go (an object file gcc
// compiles, when there is gcc), not ELF.
func TestPlanRefuses(t *testing.T) {
	stripped := program(t, "package main\n\nfunc main() {}\n", "-s -w")
	cases := []struct{ path, want string }{{stripped, "symbol table"}}
	if gcc, err := exec.LookPath("gcc"); err == nil {
		dir := t.TempDir()
		obj := filepath.Join(dir, "c.o")
		if err := os.WriteFile(filepath.Join(dir, "c.c"), []byte("int f(void) { return 1; }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(gcc, "-c", "-o", obj, filepath.Join(dir, "c.c")).CombinedOutput(); err != nil {
			t.Fatalf("gcc: %v\n%s", err, out)
		}
		cases = append(cases, struct{ path, want string }{obj, ArraySymbol})
	}
	for _, c := range cases {
		f, err := elf.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Plan(f, func(string) bool { return true })
		f.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan(%s) = %v, want an error about %s", c.path, err, c.want)
		}
	}
	dst, err := os.Create(filepath.Join(t.TempDir(), "copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Copy(dst, "initorder.go", func(string) bool { return true }); err == nil {
		t.Error("Copy of a source file: no error")
	}
}

func TestParseDepsAndFirst(t *testing.T) {
	d, err := ParseDeps("# list\ngo go1.26.8\n\ninternal/goarch\nos\ngithub.com/nscheck/nscheck/helper\n")
	if err != nil {
		t.Fatal(err)
	}
	same, other := d.First("go1.26.8"), d.First("go1.27.0")
	for _, c := range []struct {
		pkg         string
		same, other bool
	}{
		{"os", true, true},
		{"encoding/gob", false, true}, // standard, not listed: first only under another Go
		{"vendor/golang.org/x/net/dns/dnsmessage", false, true},
		{"github.com/nscheck/nscheck/helper", true, true},
		{"github.com/onsi/ginkgo/v2", false, false},
		{"golang.org/x/sys/unix", false, false},
		{"main", false, false},
	} {
		if same(c.pkg) != c.same || other(c.pkg) != c.other {
			t.Errorf("%s: first %v under the listing Go, %v under another; want %v, %v", c.pkg, same(c.pkg), other(c.pkg), c.same, c.other)
		}
	}
	for _, bad := range []string{"", "os\n", "go go1.26.8\n", "go go1.26.8\nnot a path\n"} {
		if _, err := ParseDeps(bad); err == nil {
			t.Errorf("ParseDeps(%q): no error", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"os":                 "os",
		"gopkg.in/yaml%2ev3": "gopkg.in/yaml.v3",
		"a%25b":              "a%b",
	} {
		if got, err := unescape(in); err != nil || got != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a%2", "a%zz", "%"} {
		if _, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q): no error", bad)
		}
	}
}

// Plan reads untrusted bytes (whatever /proc/self/exe is): it returns
// errors, never panics.
func FuzzPlan(f *testing.F) {
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(self[:4096])
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		Plan(ef, func(pkg string) bool { return len(pkg)%2 == 0 })
	})
}
