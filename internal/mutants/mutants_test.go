package mutants

import (
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/kconfig"
	"github.com/nscheck/nscheck/internal/report"
)

// The project's set covers every namespace type and every class, and each
// patch touches the kernel (a unified diff with a/ and b/ paths).
func TestProjectSet(t *testing.T) {
	ms, _, err := Load("../../mutants")
	if err != nil {
		t.Fatal(err)
	}
	types, classes := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		types[m.Namespace], classes[m.Class] = true, true
		// A bug in one type may rightly show in properties of others (a
		// sethostname that renames the host fails ns.kept-alive-by-fd too),
		// but a namespace mutant is caught by its own type first.
		if m.Class == "namespace" && !strings.HasPrefix(m.Expect[0], m.Namespace+".") {
			t.Errorf("%s: a %s mutant's first expectation %s is of another type", m.Name, m.Namespace, m.Expect[0])
		}
	}
	for _, r := range kconfig.NSRules {
		if !types[r.Type] {
			t.Errorf("no mutant breaks the %s namespace", r.Type)
		}
	}
	for _, c := range Classes {
		if !classes[c] {
			t.Errorf("no mutant of class %s", c)
		}
	}
}

func TestLostOptions(t *testing.T) {
	frag := []byte("# comment\nCONFIG_A=y\nCONFIG_B=n\n# CONFIG_C is not set\nCONFIG_D=2\nCONFIG_E=y\n")
	conf := []byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=4\n")
	got := strings.Join(LostOptions(frag, conf), "; ")
	want := "CONFIG_C=n is y; CONFIG_D=2 is 4; CONFIG_E=y is unset"
	if got != want {
		t.Errorf("LostOptions = %q, want %q", got, want)
	}
}

func TestKey(t *testing.T) {
	b := &Builder{Version: "6.1.192-3", Config: []byte("CONFIG_A=y\n")}
	k := b.Key(nil)
	if k != b.Key(nil) || len(k) != 16 {
		t.Fatalf("Key is not a stable 16-digit hash: %q", k)
	}
	other := []string{b.Key([]byte("patch"))}
	b.Version = "6.1.193-1"
	other = append(other, b.Key(nil))
	b.Version, b.Config = "6.1.192-3", []byte("CONFIG_A=n\n")
	other = append(other, b.Key(nil))
	for _, o := range other {
		if o == k {
			t.Errorf("Key does not change with the version, config or patch: %s", o)
		}
	}
}

func TestJudge(t *testing.T) {
	catalog := []Entry{
		{ID: "uts.hostname-local"}, {ID: "uts.distinct-ns"},
		{ID: "user.cve-x", Labels: []string{"prop:user.cve-x", "cve:CVE-2018-18955"}},
	}
	res := func(id, state, reason string) report.Result {
		return report.Result{ID: id, State: state, Reason: reason}
	}
	broken := "isolation broken: the host's hostname changed"
	m := &Mutant{Name: "uts", Expect: []string{"uts.hostname-local", "net.new-prop"}}

	rep := &report.Report{Results: []report.Result{
		res("uts.hostname-local", report.Failed, broken),
		res("uts.distinct-ns", report.Passed, ""),
		res("user.cve-x", report.Skipped, "no nested user namespaces: ..."),
	}}
	v := Judge(rep, catalog, m, nil)
	if v.Score() != "caught" || len(v.Pending) != 1 || v.Pending[0] != "net.new-prop" {
		t.Errorf("caught with a pending expectation: %+v", v)
	}

	// A harness error of the expected property is no catch, and a failure
	// elsewhere makes the kernel wrong.
	rep.Results[0] = res("uts.hostname-local", report.Failed, "spawn helper: EINVAL")
	rep.Results[1] = res("uts.distinct-ns", report.Failed, broken)
	v = Judge(rep, catalog, m, nil)
	if v.Score() != "missed" || len(v.Missed) != 1 || len(v.Unexpected) != 1 {
		t.Errorf("harness error: %+v", v)
	}

	// A label stands for the properties carrying it; none at all is pending.
	cve := &Mutant{Expect: []string{"cve:CVE-2018-18955"}}
	rep = &report.Report{Results: []report.Result{res("user.cve-x", report.Failed, broken)}}
	if v := Judge(rep, catalog, cve, nil); v.Score() != "caught" {
		t.Errorf("by label: %+v", v)
	}
	if v := Judge(rep, catalog[:2], cve, nil); v.Score() != "wrong" || len(v.Pending) != 1 {
		t.Errorf("label not in catalog: %+v", v)
	}
	none := &report.Report{Results: []report.Result{res("uts.distinct-ns", report.Passed, "")}}
	if v := Judge(none, catalog[:2], cve, nil); v.Score() != "pending" || !v.OK() {
		t.Errorf("only pending: %+v", v)
	}

	// The base passes, skipping only what base.json names; untrusted
	// results are accepted only from a mutant that declares the type.
	base := &Base{Skips: map[string]string{"user.cve-x": "why"}}
	rep = &report.Report{Results: []report.Result{
		res("uts.hostname-local", report.Passed, ""),
		res("user.cve-x", report.Skipped, "no"),
	}}
	if v := Judge(rep, catalog, nil, base); !v.OK() || v.Score() != "passed" {
		t.Errorf("base: %+v", v)
	}
	rep.Results = append(rep.Results, res("uts.distinct-ns", report.Skipped, "no"))
	if v := Judge(rep, catalog, nil, base); v.OK() {
		t.Errorf("base with an unnamed skip: %+v", v)
	}
	untrusted := res("uts.distinct-ns", report.Failed, "untrusted: the control sandbox's mnt namespace is broken")
	rep = &report.Report{Results: []report.Result{res("uts.hostname-local", report.Failed, broken), untrusted}}
	if v := Judge(rep, catalog, &Mutant{Expect: m.Expect[:1], Untrusted: []string{"mnt"}}, nil); !v.OK() || len(v.Untrusted) != 1 {
		t.Errorf("declared untrusted: %+v", v)
	}
	if v := Judge(rep, catalog, &Mutant{Expect: m.Expect[:1]}, nil); v.OK() {
		t.Errorf("undeclared untrusted: %+v", v)
	}
	rep.Errors = []string{"host changed during the run: sysvipc/msg: appeared: key=0x1 id=1"}
	if v := Judge(rep, catalog, &Mutant{Expect: m.Expect[:1], Untrusted: []string{"mnt"}, RunErrors: []string{"host changed during the run: sysvipc/msg: appeared"}}, nil); !v.OK() || len(v.ExpectedErrors) != 1 {
		t.Errorf("a declared run error: %+v", v)
	}
	rep.Errors = []string{"host guard: read mountinfo"}
	if v := Judge(rep, catalog, &Mutant{Expect: m.Expect[:1], Untrusted: []string{"mnt"}}, nil); v.OK() {
		t.Errorf("a run error: %+v", v)
	}

	table := ScoreTable([]Row{{Name: "base", Verdict: Judge(none, catalog, nil, nil)},
		{Name: "cve", Mutant: &Mutant{Namespace: "user", Class: "cve"}, Verdict: Judge(none, catalog[:2], cve, nil)}})
	if !strings.Contains(table, "**0/0** mutants caught, 1 pending") || !strings.Contains(table, "pending: property cve:CVE-2018-18955 not in catalog") {
		t.Errorf("score table:\n%s", table)
	}
}
