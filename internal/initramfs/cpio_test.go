package initramfs

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func sample(t testing.TB) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Dir("dev", 0o755))
	must(w.CharDev("dev/console", 0o600, 5, 1))
	must(w.Dir("/proc", 0o555))
	must(w.File("init", 0o755, []byte("#!/bin/true\n")))
	must(w.File("modules/veth.ko.xz", 0o644, []byte{1, 2, 3}))
	must(w.File("empty", 0o644, nil))
	must(w.Close())
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	got, err := Read(bytes.NewReader(sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "dev", Mode: TypeDir | 0o755},
		{Name: "dev/console", Mode: TypeChr | 0o600, RdevMajor: 5, RdevMinor: 1},
		{Name: "proc", Mode: TypeDir | 0o555},
		{Name: "init", Mode: TypeReg | 0o755, Data: []byte("#!/bin/true\n")},
		{Name: "modules/veth.ko.xz", Mode: TypeReg | 0o644, Data: []byte{1, 2, 3}},
		{Name: "empty", Mode: TypeReg | 0o644},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
}

func TestHeaderLayout(t *testing.T) {
	a := sample(t)
	if len(a)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(a))
	}
	// The first header: magic, ino 1, directory 0755, nlink 2, namesize 4 ("dev\0").
	want := "070701" + "00000001" + "000041ed" + "00000000" + "00000000" + "00000002" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000"
	if got := string(a[:headerLen]); got != want {
		t.Errorf("first header\n%s\nwant\n%s", got, want)
	}
	if !bytes.Contains(a, []byte("TRAILER!!!\x00")) {
		t.Error("no trailer")
	}
}

func TestRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "/", "a/../b", "../x", "a//b", "TRAILER!!!", "a\x00b", "x/"} {
		w := NewWriter(&bytes.Buffer{})
		if err := w.File(name, 0o644, nil); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	w := NewWriter(&bytes.Buffer{})
	if err := w.Write(Entry{Name: "d", Mode: TypeDir, Data: []byte("x")}); err == nil {
		t.Error("a directory with data accepted")
	}
	_ = w.Close()
	if err := w.Dir("late", 0o755); err == nil {
		t.Error("write after close accepted")
	}
}

func TestReadRejectsGarbage(t *testing.T) {
	a := sample(t)
	for name, in := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("070707"), a[6:]...),
		"truncated": a[:len(a)-20],
		"hex":       append(append([]byte{}, a[:10]...), append([]byte("zz"), a[12:]...)...),
	} {
		if _, err := Read(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// An independent implementation agrees: the system's cpio (or bsdtar) lists
// the archive, gzip-compressed as the kernel gets it.
func TestSystemCpioReadsIt(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(sample(t))
	zw.Close()
	want := "dev dev/console proc init modules/veth.ko.xz empty"
	tried := false
	for _, argv := range [][]string{{"cpio", "-it", "--quiet"}, {"bsdtar", "-tf", "-"}} {
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		tried = true
		in := gz.Bytes()
		if argv[0] == "cpio" {
			in = sample(t) // GNU cpio does not decompress
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(in)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		if got := strings.Join(strings.Fields(string(out)), " "); got != want {
			t.Errorf("%s lists %q, want %q", argv[0], got, want)
		}
	}
	if !tried {
		t.Skip("neither cpio nor bsdtar is installed (apt-get install cpio libarchive-tools)")
	}
}

// FuzzRoundTrip writes arbitrary members and reads them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add("init", []byte("x"), uint8(0))
	f.Add("a/b/c", []byte{}, uint8(1))
	f.Add("dev/console", []byte(nil), uint8(2))
	f.Fuzz(func(t *testing.T, name string, data []byte, kind uint8) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		var err error
		switch kind % 3 {
		case 0:
			err = w.File(name, 0o644, data)
		case 1:
			err = w.Dir(name, 0o755)
		case 2:
			err = w.CharDev(name, 0o600, uint32(len(data)), 7)
		}
		if err != nil {
			return // an invalid name: rejected, nothing to read back
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Name != strings.TrimPrefix(name, "/") {
			t.Fatalf("read back %+v for %q", got, name)
		}
		if kind%3 == 0 && !bytes.Equal(got[0].Data, data) {
			t.Fatalf("data differs")
		}
	})
}

// FuzzRead feeds arbitrary bytes to the reader: it must not panic or loop.
func FuzzRead(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		Read(bytes.NewReader(b))
	})
}
