package diag

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/procfile"
)

func procFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "procfs", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSysctlFixtures(t *testing.T) {
	for name, want := range map[string]string{
		"sysctl-max_user_namespaces": "96364",
		"sysctl-kernel.sem":          "32000 1024000000 500 32000",
		"sysctl-ip_local_port_range": "32768 60999",
		"sysctl-zero":                "0",
	} {
		got, err := parseSysctl(procFixture(t, name))
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if n, err := parseSysctlInt(procFixture(t, "sysctl-max_user_namespaces")); err != nil || n != 96364 {
		t.Errorf("int: %d %v", n, err)
	}
	if n, err := parseSysctlInt(procFixture(t, "sysctl-zero")); err != nil || n != 0 {
		t.Errorf("zero: %d %v", n, err)
	}
	for _, bad := range []string{"", " \n", "1\n2\n", "a\x01b", "\xff\xfe", "12 34"} {
		if _, err := parseSysctlInt([]byte(bad)); !errors.Is(err, errFormat) {
			t.Errorf("parseSysctlInt(%q): %v", bad, err)
		}
	}
}

func TestParseIDMapFixtures(t *testing.T) {
	initial, err := parseIDMap(procFixture(t, "uid_map-initial"))
	if err != nil || !isInitialMap(initial) {
		t.Errorf("initial: %v %v", initial, err)
	}
	root, err := parseIDMap(procFixture(t, "uid_map-root-mapped"))
	if err != nil || len(root) != 1 || root[0] != (idRange{0, 0, 1}) || isInitialMap(root) {
		t.Errorf("root-mapped: %v %v", root, err)
	}
	sub, err := parseIDMap(procFixture(t, "uid_map-subuid"))
	if err != nil || len(sub) != 2 || sub[1] != (idRange{1, 100000, 65536}) {
		t.Errorf("subuid: %v %v", sub, err)
	}
	if m, err := parseIDMap(procFixture(t, "uid_map-empty")); err != nil || len(m) != 0 {
		t.Errorf("empty: %v %v", m, err)
	}
	for _, bad := range []string{"0 0\n", "0 0 0\n", "a 0 1\n", "0 0 4294967296\n", "1 0 4294967295\n", "0 -1 1\n"} {
		if _, err := parseIDMap([]byte(bad)); !errors.Is(err, errFormat) {
			t.Errorf("parseIDMap(%q): %v", bad, err)
		}
	}
}

func cmdlineMap(t *testing.T, data []byte) map[string]param {
	t.Helper()
	ps, err := parseCmdline(data)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]param{}
	for _, p := range ps {
		m[p.Key] = p
	}
	return m
}

func TestParseCmdlineFixtures(t *testing.T) {
	rhel := cmdlineMap(t, procFixture(t, "cmdline-rhel7"))
	if rhel["user_namespace.enable"].Value != "1" || rhel["namespace.unpriv_enable"].Value != "1" || rhel["BOOT_IMAGE"].Value != "/vmlinuz-3.10.0-1160.el7.x86_64" {
		t.Errorf("rhel7: %v", rhel)
	}
	if q := rhel["quiet"]; q.HasValue || q.Key != "quiet" {
		t.Errorf("bare flag: %+v", q)
	}
	ub := cmdlineMap(t, procFixture(t, "cmdline-ubuntu-quoted"))
	if ub["dyndbg"].Value != "file drivers/usb/* +p" || ub["apparmor"].Value != "1" || ub["vt.handoff"].Value != "7" {
		t.Errorf("quoted: %v", ub)
	}
	init := cmdlineMap(t, procFixture(t, "cmdline-init-args"))
	if _, ok := init["user_namespace.enable"]; ok {
		t.Errorf("a parameter after -- was taken for the kernel's: %v", init)
	}
	if init["rdinit"].Value != "/sbin/init" || len(init) != 7 {
		t.Errorf("init-args: %d params %v", len(init), init)
	}
	for _, bad := range []string{"a=\"b", "a\x00b", "\xff"} {
		if _, err := parseCmdline([]byte(bad)); !errors.Is(err, errFormat) {
			t.Errorf("parseCmdline(%q): %v", bad, err)
		}
	}
}

func FuzzParseIDMap(f *testing.F) {
	for _, n := range []string{"uid_map-initial", "uid_map-root-mapped", "uid_map-subuid"} {
		f.Add(procFixture(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseIDMap(data)
		if err != nil {
			return
		}
		for _, r := range m {
			if r.Count == 0 || uint64(r.Inside)+uint64(r.Count) > 1<<32-1 {
				t.Fatalf("bad range accepted: %+v", r)
			}
		}
	})
}

func FuzzParseCmdline(f *testing.F) {
	for _, n := range []string{"cmdline-rhel7", "cmdline-ubuntu-quoted", "cmdline-init-args"} {
		f.Add(procFixture(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := parseCmdline(data)
		if err != nil {
			return
		}
		for _, p := range ps {
			if strings.Contains(p.Key+p.Value, "\"") || p.Key == "--" && !p.HasValue {
				t.Fatalf("bad parameter %+v", p)
			}
		}
	})
}

func FuzzParseSysctl(f *testing.F) {
	for _, n := range []string{"sysctl-kernel.sem", "sysctl-zero", "sysctl-max_user_namespaces"} {
		f.Add(procFixture(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSysctl(data)
		if err != nil {
			return
		}
		if s == "" || strings.ContainsAny(s, "\n\t") || strings.TrimSpace(s) != s {
			t.Fatalf("parseSysctl(%q) = %q", data, s)
		}
	})
}

// TestWithV1: cgroup2 at /sys/fs/cgroup says which v1 hierarchies this
// process is in besides it (nscheck vm's default guest); other views stay
// as they are.
func TestWithV1(t *testing.T) {
	v2 := procfile.Cgroup{HierarchyID: 0, Path: "/"}
	named := procfile.Cgroup{HierarchyID: 1, Controllers: "name=nscheck", Path: "/"}
	pids := procfile.Cgroup{HierarchyID: 2, Controllers: "pids", Path: "/"}
	for _, c := range []struct {
		version string
		cgs     []procfile.Cgroup
		want    string
	}{
		{"v2", []procfile.Cgroup{v2}, "v2"},
		{"v2", []procfile.Cgroup{named, v2}, "v2, and cgroup v1 hierarchies: name=nscheck"},
		{"v2", []procfile.Cgroup{pids, named, v2}, "v2, and cgroup v1 hierarchies: name=nscheck pids"},
		{"v1", []procfile.Cgroup{pids, named}, "v1"},
	} {
		if got := withV1(c.version, c.cgs); got != c.want {
			t.Errorf("withV1(%q, %v) = %q, want %q", c.version, c.cgs, got, c.want)
		}
	}
}
