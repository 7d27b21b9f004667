// Package initorder copies a Go executable so that, in the copy, a chosen
// set of packages is initialised before every other one.
//
// Why: a nscheck built without its lean helper (a plain `go install`; see
// internal/helperbin) re-executes itself for every helper, and a helper
// pays for every package initialiser that runs before
// internal/helpermode's serves the request and exits. Go initialises
// packages in import-path order among those whose imports are done
// (go.dev/ref/spec#Package_initialization), so in nscheck's binary some
// 100 initialisers of packages only the host needs (Ginkgo's, the
// decompressors', go/types', crypto's) run first: a helper costs about
// twice the lean one. A copy whose order starts with the packages helpers
// link (what `go list -deps` gives for internal/helpermode) serves helpers
// after exactly the lean helper's initialisers.
//
// How: since Go 1.21 the linker writes the whole program's order as one
// array of pointers to the packages' init tasks, the symbol
// go:main.inittasks (runtime.moduledata.inittasks), and the runtime runs it
// front to back. Plan reads the array and the init tasks' symbols
// (<import path>..inittask) from the ELF symbol table and gives the same
// pointers permuted: the chosen packages first, each group in the linker's
// order. The linker's order respects every import, so the permuted one
// does as long as the chosen set holds every import of its members (the
// caller's promise: a `go list -deps` closure). Nothing else in the
// binary changes. A binary without a symbol table (linked with -s), or
// whose array is not what this package expects, is an error: the caller
// keeps executing itself unchanged.
package initorder

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ArraySymbol is the linker's symbol for the program's initialisation
// order (cmd/link/internal/ld/inittask.go).
const ArraySymbol = "go:main.inittasks"

// taskSuffix ends an init task's symbol: <escaped import path>..inittask.
const taskSuffix = "..inittask"

// Patch is what Plan changes: Data replaces the bytes at file offset
// Offset (the init task array).
type Patch struct {
	Offset int64
	Data   []byte
	// Packages are the packages with init work in the array's new order;
	// First of them are the chosen ones.
	Packages []string
	First    int
}

// Plan reads exe's initialisation order and gives the patch that runs the
// init tasks of the packages first chooses before all others.
func Plan(exe *elf.File, first func(pkg string) bool) (Patch, error) {
	if exe.Class != elf.ELFCLASS64 {
		return Patch{}, fmt.Errorf("init order: %v executables are not supported", exe.Class)
	}
	syms, err := exe.Symbols()
	if err != nil {
		return Patch{}, fmt.Errorf("init order: read the symbol table: %w", err)
	}
	var array *elf.Symbol
	tasks := map[uint64]string{} // init task address -> import path
	for i, s := range syms {
		switch {
		case s.Name == ArraySymbol:
			array = &syms[i]
		case strings.HasSuffix(s.Name, taskSuffix):
			pkg, err := unescape(strings.TrimSuffix(s.Name, taskSuffix))
			if err != nil {
				return Patch{}, fmt.Errorf("init order: symbol %q: %w", s.Name, err)
			}
			tasks[s.Value] = pkg
		}
	}
	if array == nil {
		return Patch{}, fmt.Errorf("init order: no %s symbol (not a Go 1.21+ executable?)", ArraySymbol)
	}
	const ptr = 8
	if array.Size == 0 || array.Size%ptr != 0 {
		return Patch{}, fmt.Errorf("init order: %s is %d bytes, not an array of pointers", ArraySymbol, array.Size)
	}
	prog := loaded(exe, array.Value, array.Size)
	if prog == nil {
		return Patch{}, fmt.Errorf("init order: %s (%#x, %d bytes) is not in a loaded segment's file data", ArraySymbol, array.Value, array.Size)
	}
	raw := make([]byte, array.Size)
	if _, err := prog.ReadAt(raw, int64(array.Value-prog.Vaddr)); err != nil {
		return Patch{}, fmt.Errorf("init order: read %s: %w", ArraySymbol, err)
	}
	var front, rest []uint64
	var frontPkgs, restPkgs []string
	seen := map[uint64]bool{}
	for i := 0; i < len(raw); i += ptr {
		p := exe.ByteOrder.Uint64(raw[i:])
		pkg, ok := tasks[p]
		if !ok || seen[p] {
			return Patch{}, fmt.Errorf("init order: entry %d of %s (%#x) is not a package's init task, or is there twice", i/ptr, ArraySymbol, p)
		}
		seen[p] = true
		if first(pkg) {
			front, frontPkgs = append(front, p), append(frontPkgs, pkg)
		} else {
			rest, restPkgs = append(rest, p), append(restPkgs, pkg)
		}
	}
	data := make([]byte, len(raw))
	for i, p := range append(front, rest...) {
		exe.ByteOrder.PutUint64(data[i*ptr:], p)
	}
	return Patch{
		Offset:   int64(prog.Off + array.Value - prog.Vaddr),
		Data:     data,
		Packages: append(frontPkgs, restPkgs...),
		First:    len(frontPkgs),
	}, nil
}

// loaded is the PT_LOAD segment whose file data holds [addr, addr+size).
func loaded(exe *elf.File, addr, size uint64) *elf.Prog {
	for _, p := range exe.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr <= p.Filesz && size <= p.Filesz-(addr-p.Vaddr) {
			return p
		}
	}
	return nil
}

// unescape undoes the linker's escaping of an import path in a symbol
// name (objabi.PathToPrefix): %xx for a byte it may not hold as is.
func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated %-escape")
		}
		c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}

// Copy writes exe into dst with the init order of Plan: the chosen
// packages' initialisers run first. dst must be empty; on error it may hold
// part of the copy.
func Copy(dst *os.File, exe string, first func(pkg string) bool) (Patch, error) {
	src, err := os.Open(exe)
	if err != nil {
		return Patch{}, fmt.Errorf("init order: %w", err)
	}
	defer src.Close()
	ef, err := elf.NewFile(src)
	if err != nil {
		return Patch{}, fmt.Errorf("init order: %s: %w", exe, err)
	}
	patch, err := Plan(ef, first)
	if err != nil {
		return Patch{}, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return Patch{}, fmt.Errorf("init order: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		return Patch{}, fmt.Errorf("init order: copy %s: %w", exe, err)
	}
	if _, err := dst.WriteAt(patch.Data, patch.Offset); err != nil {
		return Patch{}, fmt.Errorf("init order: patch the copy: %w", err)
	}
	return patch, nil
}

// Deps is a list of packages recorded by `go list -deps` (a closure under
// imports) with the Go version that listed them, in the text form
//
//	# comment lines
//	go go1.26.8
//	internal/goarch
//	...
type Deps struct {
	GoVersion string
	Packages  []string
}

// ParseDeps reads Deps from its text form.
func ParseDeps(text string) (Deps, error) {
	var d Deps
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "go "):
			d.GoVersion = strings.TrimSpace(strings.TrimPrefix(line, "go "))
		case strings.ContainsAny(line, " \t"):
			return Deps{}, fmt.Errorf("deps list: %q is not an import path", line)
		default:
			d.Packages = append(d.Packages, line)
		}
	}
	if d.GoVersion == "" || len(d.Packages) == 0 {
		return Deps{}, errors.New("deps list: no \"go <version>\" line or no packages")
	}
	return d, nil
}

// First chooses the listed packages for a binary built by Go version
// running. The standard library's imports change between Go releases,
// while the module's own and its dependencies' are fixed by go.mod: built
// by another Go than the one that listed them, every standard package is
// chosen too (the standard library imports only itself, so the set stays
// a closure), and only the other modules' packages that are not listed
// wait.
func (d Deps) First(running string) func(pkg string) bool {
	listed := make(map[string]bool, len(d.Packages))
	for _, p := range d.Packages {
		listed[p] = true
	}
	sameGo := running == d.GoVersion
	return func(pkg string) bool { return listed[pkg] || (!sameGo && Std(pkg)) }
}

// Std reports whether pkg is a standard library package: its first path
// element has no dot (what cmd/go decides by too).
func Std(pkg string) bool {
	elem, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(elem, ".") && pkg != "main"
}
