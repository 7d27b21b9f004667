package prop

import (
	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
)

func init() {
	helper.Handle("prop.ns-id", func(typ string) (any, error) {
		id, err := nsfs.Of(0, typ)
		if err != nil {
			return nil, helper.Fail("stat /proc/self/ns/"+typ, err)
		}
		return id, nil
	})
}

// DistinctNS is the "<type>.distinct-ns" property: a helper cloned with the
// type's flag is in another namespace than its creator, by (st_dev, st_ino)
// of the nsfs file, seen from inside (/proc/self/ns) and from the creator
// (/proc/<pid>/ns).
func DistinctNS(typ string, needs Need) Property {
	flag := nsfs.Flags[typ]
	return Property{
		ID:    typ + ".distinct-ns",
		Title: "a helper cloned with " + helper.FlagNames(flag) + " is in another " + typ + " namespace (st_dev, st_ino of ns/" + typ + ")",
		Needs: needs,
		Flag:  flag,
		Check: func(t *Trial) error {
			p, err := t.Start(helper.Spec{Action: "prop.ns-id", Args: typ, Cloneflags: flag, Hold: true})
			if err != nil {
				return err
			}
			var inside nsfs.ID
			if err := p.Facts(&inside); err != nil {
				return err
			}
			seen, err := nsfs.Of(p.PID(), typ)
			if err != nil {
				return err
			}
			own, err := nsfs.Of(0, typ)
			if err != nil {
				return err
			}
			t.Inside("ns."+typ, inside.String())
			t.Host("helper.ns."+typ, seen.String())
			t.Host("own.ns."+typ, own.String())
			t.Expect(inside == seen, "the helper's own ns/%s (%s) differs from what the host sees for it (%s)", typ, inside, seen)
			t.Expect(seen != own, "the helper shares the host's %s namespace (%s)", typ, own)
			return nil
		},
	}
}
