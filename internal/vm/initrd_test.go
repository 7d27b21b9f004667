package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/initramfs"
)

// staticBinary builds a tiny static program to stand in for nscheck.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644)
	bin := filepath.Join(dir, "init")
	cmd := exec.Command(goTool(), "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// members reads every gzip member of an initramfs as a cpio archive.
func members(t *testing.T, data []byte) [][]initramfs.Entry {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(data))
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]initramfs.Entry
	for {
		zr.Multistream(false)
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		es, err := initramfs.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es)
		if err := zr.Reset(br); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

func TestInitramfsLayout(t *testing.T) {
	bin := staticBinary(t)
	ir, err := NewInitramfs(bin, AMD64)
	if err != nil {
		t.Fatal(err)
	}
	dir := fakeUnpacked(t)
	k, err := OpenKernel(Source{Kernel: dir}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "initrd")
	if err := ir.WriteFor(path, k); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	ms := members(t, data)
	if len(ms) != 2 {
		t.Fatalf("%d archives, want the base and the modules", len(ms))
	}
	var names []string
	for _, e := range ms[0] {
		names = append(names, e.Name)
		if e.Name == "dev/console" && (e.Mode&initramfs.TypeMask != initramfs.TypeChr || e.RdevMajor != 5 || e.RdevMinor != 1) {
			t.Errorf("dev/console: %+v", e)
		}
		if e.Name == "init" && (e.Mode&0o111 == 0 || len(e.Data) == 0) {
			t.Errorf("init not executable or empty: mode %o", e.Mode)
		}
	}
	if got := strings.Join(names, " "); got != "dev proc sys tmp root modules dev/console init" {
		t.Errorf("base archive: %s", got)
	}
	if len(ms[1]) != 2 || ms[1][0].Name != "modules/net_helper.ko" || ms[1][1].Name != "modules/veth.ko" || !bytes.HasPrefix(ms[1][1].Data, []byte("\x7fELF")) {
		t.Errorf("modules archive: %+v", ms[1])
	}
}

func TestCheckStatic(t *testing.T) {
	if err := CheckStatic(staticBinary(t), AMD64); err != nil {
		t.Error(err)
	}
	if err := CheckStatic("/bin/sh", AMD64); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh: %v", err)
	}
	text := filepath.Join(t.TempDir(), "x")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	if err := CheckStatic(text, AMD64); err == nil {
		t.Error("a script accepted")
	}
}
