package hostsnap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
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

// A process that carries this run's tag is a helper left behind: the
// snapshot lists it and HelpersLeft(true) kills it. Another run's tag is
// not ours.
func TestHelpersLeftFindsAndKillsTaggedProcesses(t *testing.T) {
	start := func(tag string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), helper.RunEnvVar+"="+tag)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	ours, theirs := start(helper.RunTag()), start("another-run")
	s, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("pid %d: sleep 60", ours.Process.Pid)
	if !slices.Equal(s[HelpersKey], []string{want}) {
		t.Fatalf("helpers left = %q, want only %q (not pid %d)", s[HelpersKey], want, theirs.Process.Pid)
	}
	if _, err := HelpersLeft(true); err != nil {
		t.Fatal(err)
	}
	if err := ours.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the tagged process was not killed: %v", err)
	}
	if left, _ := HelpersLeft(false); len(left) != 0 {
		t.Errorf("still left: %q", left)
	}
}

// A cgroup of this run's left under this process's own is a host change;
// cgroups of other names, another run's included, are not this run's.
func TestTakeListsTransientCgroups(t *testing.T) {
	cgs, err := procfile.ReadCgroups(0)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := procfile.Mounts(0)
	if err != nil {
		t.Fatal(err)
	}
	own := ""
	for _, c := range cgs {
		if c.HierarchyID == 0 {
			own, _ = procfile.Cgroup2Dir(c.Path, mounts)
		}
	}
	if own == "" {
		t.Skip("no cgroup2 hierarchy here (no 0:: line in /proc/self/cgroup, or it is not mounted)")
	}
	ours := filepath.Join(own, prop.UniqueName(prop.RunNamePrefix()))
	theirs := filepath.Join(own, prop.UniqueName("other-"))
	anotherRun := filepath.Join(own, prop.UniqueName(prop.NamePrefix+"1-another-run-"))
	for _, dir := range []string{ours, theirs, anotherRun} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("cannot create a cgroup under %s (run as root): %v", own, err)
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
	}
	before, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before["cgroups"], []string{ours}) {
		t.Fatalf("cgroups %q: want only %s listed, not %s or %s", before["cgroups"], ours, theirs, anotherRun)
	}
	if err := os.Remove(ours); err != nil {
		t.Fatal(err)
	}
	after, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(before, after); !slices.Equal(d, []string{"cgroups: disappeared: " + ours}) {
		t.Errorf("Diff = %q", d)
	}
}
