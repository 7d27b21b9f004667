package uts

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/prop"
)

// The names of a UTS namespace are also files, /proc/sys/kernel/hostname
// and domainname, which belong to the namespace of whoever opens them, not
// of the proc mount they are opened through. Writing one inside a new UTS
// namespace is the same as sethostname there.

func procName(kind string) string { return "/proc/sys/kernel/" + kind }

type procNames struct {
	Names
	// Proc is what the file read after the write.
	Proc string `json:"proc"`
}

func init() {
	helper.Handle("uts.proc-set", func(a setArgs) (any, error) {
		if _, ok := names[a.Kind]; !ok {
			return nil, fmt.Errorf("unknown UTS name %q", a.Kind)
		}
		if err := nsguard.Refuse("uts", a.Forbidden); err != nil {
			return nil, err
		}
		if err := os.WriteFile(procName(a.Kind), []byte(a.Value+"\n"), 0); err != nil {
			return nil, helper.Fail("write "+procName(a.Kind), err)
		}
		var f procNames
		var err error
		if f.Names, err = Get(); err != nil {
			return nil, err
		}
		v, err := os.ReadFile(procName(a.Kind))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", procName(a.Kind), err)
		}
		f.Proc = strings.TrimSpace(string(v))
		return f, nil
	})
}

func procLocal(n name) prop.Property {
	return prop.Property{
		ID: "uts.proc-" + n.kind + "-local",
		Title: "writing " + procName(n.kind) + " inside a new UTS namespace sets its " + n.kind + " (uname sees it); the host's " + n.kind +
			", by uname and by the same file, is unchanged",
		// The file belongs to the host's uid 0, not to root of a user
		// namespace: rootless, the write is refused (EACCES).
		Needs:    prop.NeedRoot,
		Flag:     unix.CLONE_NEWUTS,
		Premises: []prop.Premise{prop.ProcSysWritable("writing /proc/sys/kernel/" + n.kind + " inside the helper")},
		Check:    func(t *prop.Trial) error { return checkProcLocal(t, n) },
	}
}

var _ = prop.Register(procLocal(hostname))
var _ = prop.Register(procLocal(domainname))

func checkProcLocal(t *prop.Trial, n name) error {
	before, forbidden, err := baseline(t)
	if err != nil {
		return err
	}
	value := prop.UniqueName("nscheck-")
	args := setArgs{Kind: n.kind, Value: value, Forbidden: forbidden}
	p, err := t.Start(helper.Spec{Action: "uts.proc-set", Args: args, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
	if err != nil {
		return err
	}
	var inside procNames
	if err := p.Facts(&inside); err != nil {
		return err
	}
	hostFile, err := os.ReadFile(procName(n.kind))
	if err != nil {
		return fmt.Errorf("read %s: %w", procName(n.kind), err)
	}
	t.Inside(n.kind+" (uname)", n.get(inside.Names))
	t.Inside(procName(n.kind), inside.Proc)
	t.Host(procName(n.kind)+" while held", strings.TrimSpace(string(hostFile)))
	t.Expect(n.get(inside.Names) == value && inside.Proc == value, "inside, after writing %q to %s, uname says %q and the file %q", value, procName(n.kind), n.get(inside.Names), inside.Proc)
	t.Expect(strings.TrimSpace(string(hostFile)) == n.get(before), "the host's %s reads %q, not %q", procName(n.kind), strings.TrimSpace(string(hostFile)), n.get(before))
	return expectHostKept(t, n, before)
}
