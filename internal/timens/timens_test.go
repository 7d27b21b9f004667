package timens

import (
	"github.com/nscheck/nscheck/internal/fixture"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func readFixture(tb testing.TB, name string) string { return fixture.Read(tb, "timens", name) }

var fixtures = []string{"zero", "positive", "negative"}

func TestParseFixtures(t *testing.T) {
	mono, boot := int32(unix.CLOCK_MONOTONIC), int32(unix.CLOCK_BOOTTIME)
	cases := map[string][]Offset{
		// A new time namespace (unshare --time), and the initial one.
		"zero": {{mono, 0, 0}, {boot, 0, 0}},
		// unshare --time --monotonic 86400 --boottime 3600
		"positive": {{mono, 86400, 0}, {boot, 3600, 0}},
		// unshare --time --monotonic -300 --boottime 1000000
		"negative": {{mono, -300, 0}, {boot, 1000000, 0}},
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
	offs, _ := Parse(strings.NewReader(readFixture(t, "negative")))
	if d := Lookup(offs, mono).Duration(); d != -300*time.Second {
		t.Errorf("monotonic offset = %v", d)
	}
	if o := Lookup(offs, unix.CLOCK_REALTIME); o.Sec != 0 || o.Clock != unix.CLOCK_REALTIME {
		t.Errorf("absent clock = %v", o)
	}
}

func TestFormat(t *testing.T) {
	got := Format([]Offset{{unix.CLOCK_MONOTONIC, 5, 1}, {unix.CLOCK_BOOTTIME, -7, 0}, {unix.CLOCK_REALTIME, 1, 0}})
	if want := "monotonic 5 1\nboottime -7 0\n0 1 0\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	back, err := Parse(strings.NewReader(got))
	if err != nil || len(back) != 3 || back[2].Clock != unix.CLOCK_REALTIME {
		t.Errorf("round trip: %v %v", back, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"monotonic 1\n", "monotonic 1 2 3\n", "sometime 1 0\n", "monotonic x 0\n", "boottime 1 -1\n", "boottime 1 1000000000\n"} {
		if offs, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) accepted bad input: %v", in, offs)
		}
	}
}

func TestParseUptime(t *testing.T) {
	d, err := ParseUptime(readFixture(t, "uptime-boottime-offset"))
	if err != nil {
		t.Fatal(err)
	}
	// Captured in a namespace whose boottime is shifted by 1000000 s.
	if d < 1000000*time.Second {
		t.Errorf("uptime %v lacks the 1000000 s offset", d)
	}
	for _, in := range []string{"", "12 3.00", "12.3 4.00", "-1.00 2.00", "1.xx 2.00"} {
		if _, err := ParseUptime(in); err == nil {
			t.Errorf("ParseUptime(%q) accepted bad input", in)
		}
	}
}

// The runtime's vDSO reading and the system call read the same clock.
func TestMonotonicSources(t *testing.T) {
	before, err := Syscall(unix.CLOCK_MONOTONIC)
	if err != nil {
		t.Fatal(err)
	}
	vdso := MonotonicVDSO()
	after, err := Syscall(unix.CLOCK_MONOTONIC)
	if err != nil {
		t.Fatal(err)
	}
	if vdso < before || vdso > after {
		t.Errorf("vDSO monotonic %v outside the system call's [%v, %v]", vdso, before, after)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range fixtures {
		f.Add([]byte(readFixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		offs, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		back, err := Parse(strings.NewReader(Format(offs)))
		if err != nil || !reflect.DeepEqual(back, offs) && !(len(back) == 0 && len(offs) == 0) {
			t.Fatalf("round trip of %v gave %v, %v", offs, back, err)
		}
	})
}

func FuzzParseUptime(f *testing.F) {
	f.Add(readFixture(f, "uptime-boottime-offset"))
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseUptime(s); err == nil && d < 0 {
			t.Fatalf("negative uptime %v from %q", d, s)
		}
	})
}
