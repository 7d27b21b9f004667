package hostsnap

import (
	"slices"
	"testing"
)

func TestDiffNamesChanges(t *testing.T) {
	before := Snapshot{"hostname": {"vm"}, "mounts": {"1 0 / rw"}, "sysvipc/msg": nil}
	after := Snapshot{"hostname": {"evil"}, "mounts": {"1 0 / rw", "99 1 /tmp/x rw"}, "interfaces": {"5:veth0"}}
	got := Diff(before, after)
	want := []string{
		"hostname: appeared: evil",
		"hostname: disappeared: vm",
		"interfaces: appeared: 5:veth0",
		"mounts: appeared: 99 1 /tmp/x rw",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %q\nwant %q", got, want)
	}
	if d := Diff(before, before); len(d) != 0 {
		t.Errorf("identical snapshots differ: %q", d)
	}
}

func TestTakeIsStable(t *testing.T) {
	a, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	if len(a["hostname"]) != 1 || len(a["mounts"]) == 0 || len(a["interfaces"]) == 0 {
		t.Errorf("snapshot incomplete: %v", a)
	}
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("two snapshots in a row differ: %q", d)
	}
}
