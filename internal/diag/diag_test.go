package diag

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/kconfig"
	"github.com/nscheck/nscheck/prop"
)

// The probes re-execute this test binary as their helper.
func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// On this machine (kernel 6.18, every type built in, root) the probes must
// create all eight types, as root and as nobody through a user namespace.
func TestDiagnoseHere(t *testing.T) {
	d, err := Diagnose(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Namespaces) != 8 {
		t.Fatalf("%d namespace verdicts", len(d.Namespaces))
	}
	for _, n := range d.Namespaces {
		if !n.Available || n.Max == "" || n.Unprivileged == nil || !n.Unprivileged.OK {
			t.Errorf("%s: %+v (unprivileged %+v)", n.Type, n, n.Unprivileged)
		}
		if prop.IsRoot() && (n.Root == nil || !n.Root.OK) {
			t.Errorf("%s: root probe %+v", n.Type, n.Root)
		}
	}
	if d.Config.Source == "" && d.Config.Note == "" {
		t.Error("neither a config source nor a note saying none was found")
	}
	if len(d.Config.Tried) == 0 || d.Kernel.Release == "" || d.Self.CapEff == "" || d.Cgroup == "" {
		t.Errorf("incomplete: %+v", d)
	}
	var back Diagnosis
	if err := json.Unmarshal(d.JSON(), &back); err != nil || len(back.Namespaces) != 8 {
		t.Errorf("JSON round trip: %v", err)
	}
	var text strings.Builder
	if err := WriteText(&text, d); err != nil || !strings.Contains(text.String(), "8 of 8 namespace types available") {
		t.Errorf("text: %v\n%s", err, text.String())
	}
}

// Without probes the config and the sysctls decide.
func TestDiagnoseNoProbeWithConfig(t *testing.T) {
	d, err := Diagnose(context.Background(), Options{NoProbe: true, ConfigPath: "../../fixtures/kconfig/debian-6.1-no-user-ns.config"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range d.Namespaces {
		if n.Root != nil || n.Unprivileged != nil {
			t.Errorf("%s probed with NoProbe", n.Type)
		}
		if n.Available == (n.Type == "user") {
			t.Errorf("%s: available %v", n.Type, n.Available)
		}
	}
	if len(d.Problems) != 1 || d.Problems[0].Knob != "CONFIG_USER_NS" {
		t.Errorf("problems %+v", d.Problems)
	}
	if !strings.Contains(d.Config.Note, "this config is for 6.1.192") {
		t.Errorf("no version mismatch note: %q", d.Config.Note)
	}
	if _, err := Diagnose(context.Background(), Options{ConfigPath: "../../fixtures/kconfig/garbage.gz"}); err == nil {
		t.Error("a broken --config was accepted")
	}
}

func TestExplainStartOnlyEnvironmental(t *testing.T) {
	if s := ExplainStart(&helper.StartError{Flags: unix.CLONE_NEWUTS, Err: unix.ENOMEM}); s != "" {
		t.Errorf("ENOMEM explained: %q", s)
	}
	s := ExplainStart(&helper.StartError{Flags: unix.CLONE_NEWUTS, Err: unix.ENOSPC})
	if !strings.Contains(s, "user.max_uts_namespaces") {
		t.Errorf("ENOSPC: %q", s)
	}
}

func TestNoConfigIsANote(t *testing.T) {
	cf := describeConfig(kconfig.Find([]string{"/nonexistent/config"}), "6.1.0")
	if cf.config != nil || cf.Source != "" || !strings.Contains(cf.Note, "no kernel config found") || len(cf.Tried) != 1 {
		t.Errorf("%+v", cf)
	}
}

// The text form prints every fix whole: the AppArmor profile, the global
// switch with its trade-off, the persistent sysctl file.
func TestWriteTextProblems(t *testing.T) {
	f := testFacts(map[string]string{knobAARestrict: "1"})
	c := mustCause(t, f, unix.EACCES, []string{"user"}, true)
	d := &Diagnosis{Namespaces: []Namespace{{Type: "user", Config: "built-in", Cause: &c}}, Problems: []Cause{c}}
	var b strings.Builder
	if err := WriteText(&b, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"fix: create /etc/apparmor.d/nscheck:", "  userns,", "then: apparmor_parser -r /etc/apparmor.d/nscheck",
		"or: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0", "persist: /etc/sysctl.d/90-nscheck-userns.conf:",
		"attack surface", "0 of 1 namespace types available",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	t.Log(b.String())
}
