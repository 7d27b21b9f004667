package kconfig

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func fixture(name string) string { return filepath.Join("..", "..", "fixtures", "kconfig", name) }

func mustParse(t *testing.T, name string) *Config {
	t.Helper()
	c, err := ParseFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verdicts(c *Config) map[string]NSVerdict {
	out := map[string]NSVerdict{}
	for _, v := range c.Namespaces() {
		out[v.Type] = v
	}
	return out
}

func TestDebianConfigs(t *testing.T) {
	for _, c := range []struct{ file, version string }{
		{"debian-6.1-cloud-amd64.config", "6.1.192"},
		{"debian-6.12-cloud-amd64.config", "6.12.117"},
		{"debian-6.12-cloud-amd64.config.gz", "6.12.117"},
	} {
		cfg := mustParse(t, c.file)
		if cfg.Version != c.version || cfg.Arch != "x86" {
			t.Errorf("%s: version %q arch %q, want %s x86", c.file, cfg.Version, cfg.Arch, c.version)
		}
		if cfg.Len() < 3000 {
			t.Errorf("%s: only %d options", c.file, cfg.Len())
		}
		v := verdicts(cfg)
		if len(v) != 8 {
			t.Fatalf("%s: %d namespace verdicts", c.file, len(v))
		}
		for typ, got := range v {
			if !got.Available || got.State != BuiltIn {
				t.Errorf("%s: %s not available: %+v", c.file, typ, got)
			}
		}
		if v["mnt"].Option != "" || v["cgroup"].Option != "" || v["user"].Option != "CONFIG_USER_NS" {
			t.Errorf("%s: options %q %q %q", c.file, v["mnt"].Option, v["cgroup"].Option, v["user"].Option)
		}
		deps := map[string]string{}
		for _, d := range cfg.Deps() {
			deps[d.Option] = d.State
		}
		want := map[string]string{"CONFIG_VETH": Module, "CONFIG_SYSVIPC": BuiltIn, "CONFIG_SECURITY_APPARMOR": BuiltIn, "CONFIG_BPF_LSM": BuiltIn, "CONFIG_CHECKPOINT_RESTORE": BuiltIn}
		for o, s := range want {
			if deps[o] != s {
				t.Errorf("%s: %s is %q, want %q", c.file, o, deps[o], s)
			}
		}
	}
	gz := mustParse(t, "debian-6.12-cloud-amd64.config.gz")
	plain := mustParse(t, "debian-6.12-cloud-amd64.config")
	if gz.Len() != plain.Len() {
		t.Errorf("gzip copy has %d options, plain %d", gz.Len(), plain.Len())
	}
	if v, _ := plain.Value("LSM"); !strings.Contains(v, "apparmor") {
		t.Errorf("CONFIG_LSM = %s", v)
	}
}

func TestOptionsTurnedOff(t *testing.T) {
	cases := []struct {
		file, typ, option string
		reason            string
	}{
		{"debian-6.1-no-user-ns.config", "user", "CONFIG_USER_NS", "CONFIG_USER_NS is not set"},
		{"debian-6.12-no-time-ns.config", "time", "CONFIG_TIME_NS", "CONFIG_TIME_NS is not set"},
		{"old-5.4-header.config", "time", "CONFIG_TIME_NS", "need kernel 5.6 or newer; this config is for 5.4.0"},
		{"debian-6.1-no-namespaces.config", "uts", "CONFIG_UTS_NS", "CONFIG_NAMESPACES and CONFIG_UTS_NS is not set"},
	}
	for _, c := range cases {
		v := verdicts(mustParse(t, c.file))
		got := v[c.typ]
		if got.Available || got.State != Absent || got.Option != c.option || !strings.Contains(got.Reason, c.reason) {
			t.Errorf("%s: %s = %+v, want absent with %q", c.file, c.typ, got, c.reason)
		}
		n := 0
		for _, x := range v {
			if !x.Available {
				n++
			}
		}
		if c.file == "debian-6.1-no-namespaces.config" {
			if n != 6 || !v["mnt"].Available || !v["cgroup"].Available {
				t.Errorf("no-namespaces: %d types off, want 6 (all but mnt and cgroup)", n)
			}
			if len(got.Enable) != 2 || got.Enable[0] != "CONFIG_NAMESPACES=y" {
				t.Errorf("no-namespaces: enable %v", got.Enable)
			}
		} else if n != 1 {
			t.Errorf("%s: %d types off, want 1", c.file, n)
		}
	}
}

func TestVersionRules(t *testing.T) {
	base := "#\n# Linux/x86_64 %s Kernel Configuration\n#\nCONFIG_NAMESPACES=y\nCONFIG_CGROUPS=y\nCONFIG_TIME_NS=y\n"
	for _, c := range []struct {
		version      string
		cgroup, time bool
	}{
		{"4.4.0", false, false}, {"4.6.0", true, false}, {"5.5.19", true, false}, {"5.6.0", true, true}, {"6.12.0-rc1", true, true},
	} {
		cfg, err := Parse(strings.NewReader(strings.Replace(base, "%s", c.version, 1)))
		if err != nil {
			t.Fatal(err)
		}
		v := verdicts(cfg)
		if v["cgroup"].Available != c.cgroup || v["time"].Available != c.time {
			t.Errorf("%s: cgroup %v time %v, want %v %v", c.version, v["cgroup"].Available, v["time"].Available, c.cgroup, c.time)
		}
	}
	old, err := Parse(strings.NewReader("# Linux kernel version: 2.6.32\nCONFIG_NAMESPACES=y\n"))
	if err != nil || old.Version != "2.6.32" {
		t.Errorf("old header: %v %q", err, old.Version)
	}
	none, err := Parse(strings.NewReader("CONFIG_NAMESPACES=y\nCONFIG_CGROUPS=y\n"))
	if err != nil || none.Version != "" || !verdicts(none)["cgroup"].Available {
		t.Errorf("no header: rules must not apply: %v %+v", err, none)
	}
}

func TestRejectsBadInput(t *testing.T) {
	for _, name := range []string{"truncated.config", "garbage.bin", "truncated.config.gz", "garbage.gz"} {
		_, err := ParseFile(fixture(name))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	for _, in := range []string{
		"", "\n", "CONFIG_NAMESPACES=y", "hello\nCONFIG_NAMESPACES=y\n", "CONFIG_=y\n",
		"CONFIG_UTS_NS=y\n", "CONFIG_NAMESPACES=y\nCONFIG_X\n", "CONFIG_NAMESPACES=y\x00\n",
	} {
		if _, err := Parse(strings.NewReader(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): err %v, want ErrInvalid", in, err)
		}
	}
	if _, err := ParseFile(fixture("no-such-file")); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Find([]string{filepath.Join(dir, "absent"), bad, fixture("debian-6.1-cloud-amd64.config"), fixture("debian-6.12-cloud-amd64.config")})
	if f.Config == nil || f.Config.Version != "6.1.192" || len(f.Tried) != 3 {
		t.Fatalf("Find: %+v", f)
	}
	if !strings.HasSuffix(f.Tried[0], ": absent") || !strings.Contains(f.Tried[1], "unusable") || !strings.HasSuffix(f.Tried[2], ": used") {
		t.Errorf("tried: %q", f.Tried)
	}
	if f := Find([]string{filepath.Join(dir, "absent")}); f.Config != nil {
		t.Errorf("found a config in nothing: %+v", f)
	}
	if c := Candidates("6.1.0-28-amd64"); len(c) != 5 || c[0] != "/proc/config.gz" || c[1] != "/boot/config-6.1.0-28-amd64" {
		t.Errorf("candidates %q", c)
	}
}

func FuzzParse(f *testing.F) {
	// Small seeds keep the fuzzer fast: the fixture's header, a truncated
	// and a broken gzip stream, and a gzip of a minimal config.
	for _, name := range []string{"truncated.config", "truncated.config.gz", "garbage.gz"} {
		data, err := os.ReadFile(fixture(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	small := "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_NAMESPACES=y\n# CONFIG_USER_NS is not set\nCONFIG_LSM=\"a,b\"\n"
	f.Add([]byte(small))
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(small))
	zw.Close()
	f.Add(zb.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if _, ok := c.Value("NAMESPACES"); !ok {
			t.Fatal("accepted a config without CONFIG_NAMESPACES")
		}
		for _, v := range c.Namespaces() {
			if !v.Available && (v.Reason == "" || v.State != Absent) {
				t.Fatalf("unavailable without a reason or not absent: %+v", v)
			}
			if v.Available && len(v.Enable) > 0 {
				t.Fatalf("available yet options to enable: %+v", v)
			}
		}
	})
}

// The regular expressions the line parsers replaced: option, notSet and
// header must agree with them on every line Parse hands them (no newline).
var (
	optRE    = regexp.MustCompile(`^CONFIG_([A-Za-z0-9_]+)=(.*)$`)
	notSetRE = regexp.MustCompile(`^# CONFIG_([A-Za-z0-9_]+) is not set$`)
	headerRE = regexp.MustCompile(`^# Linux/(\S+) (\d+\.\d+(?:\.\d+)?)\S* Kernel Configuration$`)
	oldHdrRE = regexp.MustCompile(`^# Linux kernel version: (\d+\.\d+(?:\.\d+)?)`)
)

// lineSeeds are lines each parser must take or refuse as the regexps did.
var lineSeeds = []string{
	"CONFIG_NAMESPACES=y", "CONFIG_LSM=\"a,b\"", "CONFIG_X=", "CONFIG_=y", "CONFIG_A-B=y", "CONFIG_A=b=c", "CONFIG_A",
	"# CONFIG_USER_NS is not set", "# CONFIG_USER_NS is not set ", "# CONFIG_ is not set", "# CONFIG_A B is not set",
	"# Linux/x86 6.1.192 Kernel Configuration", "# Linux/x86 6.12.0-rc1 Kernel Configuration",
	"# Linux/x86_64 5.4 Kernel Configuration", "# Linux/x86 6. Kernel Configuration", "# Linux/ 6.1 Kernel Configuration",
	"# Linux/x86 6.1 Kernel Configuration Kernel Configuration", "# Linux/x\t86 6.1 Kernel Configuration",
	"# Linux/x86  6.1 Kernel Configuration", "# Linux/x86 6.1.2.3x Kernel Configuration", "# Linux/x86 v6.1 Kernel Configuration",
	"# Linux kernel version: 5.4.0", "# Linux kernel version: 2.6.32-rc1 extra", "# Linux kernel version: x",
	"# Linux kernel version:5.4", "#", "",
}

func TestLineParsersMatchRegexps(t *testing.T) {
	for _, line := range lineSeeds {
		checkLine(t, line)
	}
}

func FuzzLineParsers(f *testing.F) {
	for _, line := range lineSeeds {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "\n") {
			return // Parse splits lines first
		}
		checkLine(t, line)
	})
}

func checkLine(t *testing.T, line string) {
	t.Helper()
	name, value, ok := option(line)
	if m := optRE.FindStringSubmatch(line); ok != (m != nil) || ok && (name != m[1] || value != m[2]) {
		t.Errorf("option(%q) = %q %q %v, regexp %q", line, name, value, ok, m)
	}
	name, ok = notSet(line)
	if m := notSetRE.FindStringSubmatch(line); ok != (m != nil) || ok && name != m[1] {
		t.Errorf("notSet(%q) = %q %v, regexp %q", line, name, ok, m)
	}
	var wantArch, wantVersion string
	if m := headerRE.FindStringSubmatch(line); m != nil {
		wantArch, wantVersion = m[1], NormalizeVersion(m[2])
	} else if m := oldHdrRE.FindStringSubmatch(line); m != nil {
		wantVersion = NormalizeVersion(m[1])
	}
	if arch, version := header(line); arch != wantArch || version != wantVersion {
		t.Errorf("header(%q) = %q %q, regexps %q %q", line, arch, version, wantArch, wantVersion)
	}
}
