package caps

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		c    Cap
		name string
		flag string
	}{
		{unix.CAP_CHOWN, "CAP_CHOWN", "chown"},
		{unix.CAP_SYS_TIME, "CAP_SYS_TIME", "sys_time"},
		{unix.CAP_SETFCAP, "CAP_SETFCAP", "setfcap"},
		{unix.CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE", "checkpoint_restore"},
		{63, "CAP_63", "63"},
	} {
		if got := tc.c.String(); got != tc.name {
			t.Errorf("Cap(%d).String() = %q, want %q", int(tc.c), got, tc.name)
		}
		if got := tc.c.Flag(); got != tc.flag {
			t.Errorf("Cap(%d).Flag() = %q, want %q", int(tc.c), got, tc.flag)
		}
	}
	if len(All()) != unix.CAP_LAST_CAP+1 {
		t.Errorf("the table names %d capabilities, x/sys/unix knows %d", len(All()), unix.CAP_LAST_CAP+1)
	}
	for _, c := range All() {
		if got, ok := Parse(c.Flag()); !ok || got != c {
			t.Errorf("Parse(%q) = %v, %v", c.Flag(), got, ok)
		}
	}
	if _, ok := Parse("cap_nonsense"); ok {
		t.Error("Parse accepted an unknown name")
	}
}

func TestSet(t *testing.T) {
	s := Set(1<<unix.CAP_SYS_TIME | 1<<unix.CAP_NET_ADMIN)
	if !s.Has(unix.CAP_SYS_TIME) || s.Has(unix.CAP_SYS_ADMIN) || s.Has(-1) || s.Has(64) {
		t.Errorf("Has is wrong for %x", uint64(s))
	}
	if got := s.Names(); len(got) != 2 || got[0] != "CAP_NET_ADMIN" || got[1] != "CAP_SYS_TIME" {
		t.Errorf("Names() = %v", got)
	}
	if n := len(s.Missing()); n != len(All())-2 {
		t.Errorf("Missing() has %d, want %d", n, len(All())-2)
	}
}

// TestSelf compares the sets read through capget and prctl with what the
// kernel prints in /proc/self/status.
func TestSelf(t *testing.T) {
	s, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status to compare with: %v", err)
	}
	for _, tc := range []struct {
		field string
		set   Set
	}{{"CapEff", s.Effective}, {"CapPrm", s.Permitted}, {"CapInh", s.Inheritable}, {"CapBnd", s.Bounding}, {"CapAmb", s.Ambient}} {
		var want uint64
		if !scanHex(status, tc.field, &want) {
			t.Fatalf("no %s line in /proc/self/status", tc.field)
		}
		if uint64(tc.set) != want {
			t.Errorf("%s: read %016x, the kernel says %016x", tc.field, uint64(tc.set), want)
		}
	}
}
