package procfile

import (
	"os"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func fixtureMounts(t *testing.T, name string) map[string]*mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMountsFromReader(strings.NewReader(readFixture(t, name)), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*mountinfo.Info{}
	for _, m := range ms {
		out[m.Mountpoint] = m
	}
	return out
}

func TestOptional(t *testing.T) {
	lab := "/tmp/wt-init-lab/"
	cases := []struct {
		fixture, mount string
		want           map[string]string // tag -> value; absent tags must be absent
	}{
		{"mountinfo-lab", "/", nil},
		{"mountinfo-lab", lab + "shared", map[string]string{Shared: "3"}},
		{"mountinfo-lab", lab + "slave", map[string]string{Master: "3"}},
		{"mountinfo-lab", lab + "sharedslave", map[string]string{Shared: "4", Master: "3"}},
		{"mountinfo-lab", lab + "unbindable", map[string]string{Unbindable: ""}},
		{"mountinfo-lab", lab + "with space", nil},
		{"mountinfo-chroot", "/b", map[string]string{Master: "2", PropagateFrom: "1"}},
		{"mountinfo-chroot", "/c", map[string]string{Shared: "1"}},
	}
	for _, c := range cases {
		m := fixtureMounts(t, c.fixture)[c.mount]
		if m == nil {
			t.Errorf("%s: no mount at %q", c.fixture, c.mount)
			continue
		}
		for _, tag := range []string{Shared, Master, PropagateFrom, Unbindable} {
			want, wantOK := c.want[tag]
			if got, ok := Optional(m, tag); ok != wantOK || got != want {
				t.Errorf("%s %s: Optional(%s) = %q %v, want %q %v", c.fixture, c.mount, tag, got, ok, want, wantOK)
			}
		}
	}
}

func TestHasOption(t *testing.T) {
	m := fixtureMounts(t, "mountinfo-lab")["/"]
	for opt, want := range map[string]bool{"rw": true, "relatime": true, "ro": false, "discard": false, "rel": false} {
		if got := HasOption(m, opt); got != want {
			t.Errorf("HasOption(%q, %q) = %v, want %v", m.Options, opt, got, want)
		}
	}
}

func TestMountsSelf(t *testing.T) {
	own, err := Mounts(0)
	if err != nil {
		t.Fatal(err)
	}
	byPID, err := Mounts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(own) == 0 || len(own) != len(byPID) {
		t.Fatalf("%d mounts in /proc/self/mountinfo, %d in /proc/%d/mountinfo", len(own), len(byPID), os.Getpid())
	}
	root := false
	for _, m := range own {
		root = root || m.Mountpoint == "/"
	}
	if !root {
		t.Error("nothing mounted at /")
	}
	if _, err := Mounts(1 << 30); err == nil {
		t.Error("Mounts of a pid that cannot exist worked")
	}
}

func TestCgroup2Dir(t *testing.T) {
	mounts := []*mountinfo.Info{
		{FSType: "cgroup", Root: "/", Mountpoint: "/sys/fs/cgroup/pids"},
		{FSType: "cgroup2", Root: "/user.slice", Mountpoint: "/mnt/cg"},
		{FSType: "cgroup2", Root: "/", Mountpoint: "/sys/fs/cgroup/unified"},
	}
	for path, want := range map[string]string{
		"/user.slice/session-1.scope": "/mnt/cg/session-1.scope",
		"/user.slice":                 "/mnt/cg",
		"/user.slicex/a":              "/sys/fs/cgroup/unified/user.slicex/a", // not under /user.slice
		"/":                           "/sys/fs/cgroup/unified",
	} {
		if got, ok := Cgroup2Dir(path, mounts); !ok || got != want {
			t.Errorf("Cgroup2Dir(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
	if got, ok := Cgroup2Dir("/a", mounts[:1]); ok {
		t.Errorf("no cgroup2 mount, yet %q", got)
	}
}

// TestPartialIn: the topmost proc on /proc decides whether the view is
// partial.
func TestPartialIn(t *testing.T) {
	for name, partial := range map[string]bool{
		"mountinfo-proc-subset": true, "mountinfo-proc-subset-covered": false, "mountinfo-lab": false,
	} {
		ms, err := mountinfo.GetMountsFromReader(strings.NewReader(readFixture(t, name)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if why := PartialIn(ms); (why != "") != partial || (partial && !strings.Contains(why, "subset=pid")) {
			t.Errorf("%s: PartialIn = %q, want partial %v", name, why, partial)
		}
	}
}

// TestPartialLive: the test's own /proc is whole (the zoo's
// proc-subset-pid environments run nscheck where it is not).
func TestPartialLive(t *testing.T) {
	if why, err := Partial(); err != nil || why != "" {
		t.Fatalf("Partial() = %q, %v on the test's own /proc", why, err)
	}
}
