package ns

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/forkchain"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/nsguard"
	"github.com/nscheck/nscheck/prop"
)

// limitArgs asks a helper in a fresh user namespace to lower (Lower) its
// user.max_<type>_namespaces to 0 for every type and try to create one of
// each. Forbidden is the host's user namespace, whose limits it refuses to
// touch.
type limitArgs struct {
	Lower     bool    `json:"lower"`
	Forbidden nsfs.ID `json:"forbidden"`
}

// limitFacts per type: the limit before and after, and creating one.
type limitFacts map[string]struct {
	Before string `json:"before"`
	After  string `json:"after"`
	Create string `json:"create"`
}

func limitKey(typ string) string { return "user/max_" + typ + "_namespaces" }

func readLimit(typ string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + limitKey(typ))
	if err != nil {
		return "", fmt.Errorf("read sysctl: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func init() {
	helper.Handle("ns.limits", lowerLimits)
}

func lowerLimits(a limitArgs) (any, error) {
	if err := nsguard.Refuse("user", a.Forbidden); err != nil {
		return nil, err
	}
	out := limitFacts{}
	for _, typ := range nsfs.Types {
		f := out[typ]
		var err error
		if f.Before, err = readLimit(typ); err != nil {
			return nil, err
		}
		if a.Lower {
			if err := os.WriteFile("/proc/sys/"+limitKey(typ), []byte("0\n"), 0); err != nil {
				return nil, helper.Fail("write /proc/sys/"+limitKey(typ), err)
			}
		}
		if f.After, err = readLimit(typ); err != nil {
			return nil, err
		}
		// Creating one is a fork with the flag (a user namespace maps
		// its ids): the limit is checked at clone, and no exec is needed.
		f.Create = errname.Of(forkchain.Try(nsfs.Flags[typ], helper.DefaultTimeout))
		out[typ] = f
	}
	return out, nil
}

var _ = prop.Register(prop.Property{
	ID:    "ns.limit-enforced",
	Title: "with user.max_<type>_namespaces lowered to 0 inside a fresh user namespace, creating one more of each type fails with ENOSPC; the host's limits are untouched",
	Needs: prop.NeedUserns,
	// Nominal: the control leaves the limits where they are, so creating
	// succeeds, and the check must see the difference.
	Flag: unix.CLONE_NEWUTS,
	Premises: []prop.Premise{
		prop.NestedUserNS("creating a user namespace inside the one whose limits are lowered"),
		prop.ProcSysWritable("lowering user.max_*_namespaces inside the helper's user namespace"),
	},
	Check: limitEnforced,
})

func limitEnforced(t *prop.Trial) error {
	before := map[string]string{}
	for _, typ := range nsfs.Types {
		v, err := readLimit(typ)
		if err != nil {
			return err
		}
		before[typ] = v
	}
	a := limitArgs{Lower: t.Isolated}
	var err error
	if a.Forbidden, err = t.Forbidden("user"); err != nil {
		return err
	}
	s := helper.Spec{Action: "ns.limits", Args: a, Cloneflags: unix.CLONE_NEWUSER, Hold: true}
	s.UIDMappings, s.GIDMappings = helper.RootMapping()
	p, err := t.Start(s)
	if err != nil {
		return err
	}
	var inside limitFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	for _, typ := range nsfs.Types {
		during, err := readLimit(typ)
		if err != nil {
			return err
		}
		in := inside[typ]
		t.Inside(limitKey(typ), in.Before+" -> "+in.After)
		t.Inside("create "+typ+" namespace", in.Create)
		t.Host(limitKey(typ), before[typ]+" -> "+during)
		t.Expect(errname.Is(in.Create, unix.ENOSPC), "creating a %s namespace with %s at %s gave %s, want ENOSPC", typ, limitKey(typ), in.After, in.Create)
		t.Expect(during == before[typ], "the host's %s changed from %s to %s", limitKey(typ), before[typ], during)
	}
	return nil
}
