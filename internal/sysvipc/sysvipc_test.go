package sysvipc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "sysvipc", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixtures(t *testing.T) {
	cases := []struct {
		file string
		keys []int32
		ids  []int
	}{
		{"msg", []int32{190850013, -1376407072}, []int{0, 1}},
		{"shm", []int32{1436572275}, []int{0}},
		{"sem", []int32{-841031282}, []int{0}},
		{"msg-empty", nil, nil},
	}
	for _, c := range cases {
		objs, err := Parse(strings.NewReader(string(readFixture(t, c.file))))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if len(objs) != len(c.keys) {
			t.Fatalf("%s: %d objects, want %d", c.file, len(objs), len(c.keys))
		}
		for i, o := range objs {
			if o.Key != c.keys[i] || o.ID != c.ids[i] {
				t.Errorf("%s[%d] = key %d id %d, want %d %d", c.file, i, o.Key, o.ID, c.keys[i], c.ids[i])
			}
			if !HasKey(objs, c.keys[i]) {
				t.Errorf("HasKey(%d) false", c.keys[i])
			}
		}
	}
	objs, _ := Parse(strings.NewReader(string(readFixture(t, "shm"))))
	if got := objs[0].Fields["size"]; got != "4096" {
		t.Errorf("shm size field = %q, want 4096", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"garbage\n",
		"       key      msqid perms\n12 0\n",
		"       key      msqid perms\nxx 0 644\n",
		"       key      msqid perms\n12 -4 644\n",
		"       key      msqid perms\n99999999999 1 644\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) accepted bad input", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"msg", "shm", "sem", "msg-empty"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.ID < 0 {
				t.Fatalf("negative id accepted: %+v", o)
			}
		}
	})
}

func TestRandomKey(t *testing.T) {
	seen := map[int32]bool{}
	for range 1000 {
		k := RandomKey()
		if k == 0 || k == -1 {
			t.Fatalf("RandomKey gave %d (IPC_PRIVATE or -1)", k)
		}
		seen[k] = true
	}
	// More than one repeat among 1000 draws of 32 bits (odds about 10^-8)
	// is a broken generator, not bad luck.
	if len(seen) < 999 {
		t.Errorf("1000 keys, only %d distinct", len(seen))
	}
}
