package idmap

import (
	"github.com/nscheck/nscheck/internal/fixture"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readFixture(tb testing.TB, name string) string { return fixture.Read(tb, "idmap", name) }

var fixtures = []string{"initial", "root-single", "unwritten", "multi", "multi-gid", "nested-from-host", "nested-from-parent"}

func TestParseFixtures(t *testing.T) {
	cases := map[string]Map{
		// The initial user namespace, as every process in it sees it.
		"initial": Identity,
		// unshare --user --map-root-user as root.
		"root-single": {{0, 0, 1}},
		// A new user namespace before anything was written.
		"unwritten": nil,
		// Written by the host: "0 100000 65536" and "65536 0 1".
		"multi":     {{0, 100000, 65536}, {65536, 0, 1}},
		"multi-gid": {{0, 100000, 65536}},
		// One map, read from two namespaces: the outside ids are the
		// reader's (the parent maps its 5 to the host's 100005).
		"nested-from-host":   {{0, 100005, 1}},
		"nested-from-parent": {{0, 5, 1}},
	}
	for _, name := range fixtures {
		got, err := Parse(strings.NewReader(readFixture(t, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, cases[name]) {
			t.Errorf("%s = %v, want %v", name, got, cases[name])
		}
	}
}

func TestTranslate(t *testing.T) {
	m, err := Parse(strings.NewReader(readFixture(t, "multi")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, out uint32 }{{0, 100000}, {65535, 165535}, {65536, 0}, {1000, 101000}} {
		if got, ok := m.ToOutside(c.in); !ok || got != c.out {
			t.Errorf("ToOutside(%d) = %d %v, want %d", c.in, got, ok, c.out)
		}
		if got, ok := m.ToInside(c.out); !ok || got != c.in {
			t.Errorf("ToInside(%d) = %d %v, want %d", c.out, got, ok, c.in)
		}
	}
	for _, in := range []uint32{65537, 4294967295} {
		if got, ok := m.ToOutside(in); ok {
			t.Errorf("ToOutside(%d) = %d, want unmapped", in, got)
		}
	}
	for _, out := range []uint32{1, 99999, 165536} {
		if got, ok := m.ToInside(out); ok {
			t.Errorf("ToInside(%d) = %d, want unmapped", out, got)
		}
	}
	if got, ok := Identity.ToInside(4294967294); !ok || got != 4294967294 {
		t.Errorf("identity: ToInside(4294967294) = %d %v", got, ok)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"0 0\n",
		"0 0 1 1\n",
		"x 0 1\n",
		"-1 0 1\n",
		"0 0 0\n",
		"4294967295 0 2\n",
		"0 4294967295 2\n",
		"0 0 4294967296\n",
		"0 10 5\n3 100 1\n",
		"0 10 5\n100 12 1\n",
		manyExtents(MaxExtents + 1),
	} {
		if m, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%.40q) accepted bad input: %v", in, m)
		}
	}
	if _, err := Parse(strings.NewReader(manyExtents(MaxExtents))); err != nil {
		t.Errorf("%d extents rejected: %v", MaxExtents, err)
	}
}

func manyExtents(n int) string {
	var m Map
	for i := range n {
		m = append(m, Extent{Inside: uint32(i), Outside: uint32(1000 + i), Count: 1})
	}
	return m.String()
}

func TestStringRoundTrip(t *testing.T) {
	for _, name := range fixtures {
		m, _ := Parse(strings.NewReader(readFixture(t, name)))
		back, err := Parse(strings.NewReader(m.String()))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Errorf("%s: round trip gave %v, %v", name, back, err)
		}
	}
}

func TestReadSelf(t *testing.T) {
	m, err := Read(0, "uid")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.ToOutside(uint32(os.Geteuid())); !ok {
		t.Errorf("own euid %d is not in own uid_map %v", os.Geteuid(), m)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range fixtures {
		f.Add([]byte(readFixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		back, err := Parse(strings.NewReader(m.String()))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip of %v gave %v, %v", m, back, err)
		}
		for _, e := range m {
			for _, in := range []uint32{e.Inside, e.Inside + e.Count - 1} {
				out, ok := m.ToOutside(in)
				if !ok {
					t.Fatalf("%d inside %v not mapped", in, e)
				}
				if back, ok := m.ToInside(out); !ok || back != in {
					t.Fatalf("%d -> %d -> %d, %v", in, out, back, ok)
				}
			}
		}
	})
}
