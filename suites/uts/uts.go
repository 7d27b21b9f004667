// Package uts holds the UTS namespace properties: a hostname or domain name
// set inside a new UTS namespace stays there.
package uts

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/prop"
)

// setNameFacts is what the helper saw after setting its hostname.
type setNameFacts struct {
	Hostname string `json:"hostname"`
}

func init() {
	helper.Handle("uts.sethostname", func(name string) (any, error) {
		if err := unix.Sethostname([]byte(name)); err != nil {
			return nil, helper.Fail("sethostname", err)
		}
		got, err := os.Hostname()
		if err != nil {
			return nil, helper.Fail("gethostname", err)
		}
		return setNameFacts{Hostname: got}, nil
	})
}

var _ = prop.Register(prop.Property{
	ID:    "uts.hostname-local",
	Title: "sethostname inside a new UTS namespace is seen inside; the host's hostname is unchanged",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS,
	Check: hostnameLocal,
})

var _ = prop.Register(prop.DistinctNS("uts", prop.NeedUserns))

func hostnameLocal(t *prop.Trial) error {
	before, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	name := prop.UniqueName("nscheck-")
	p, err := t.Start(helper.Spec{Action: "uts.sethostname", Args: name, Cloneflags: unix.CLONE_NEWUTS, Hold: true})
	if err != nil {
		return err
	}
	var inside setNameFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	// Read the host's view while the helper still holds its namespace.
	after, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("gethostname: %w", err)
	}
	t.Inside("hostname", inside.Hostname)
	t.Host("hostname.before", before)
	t.Host("hostname.while-held", after)
	t.Expect(inside.Hostname == name, "inside the hostname is %q, not the %q it set", inside.Hostname, name)
	if !t.Expect(after == before, "the host's hostname changed from %q to %q", before, after) && after == name {
		// Never leave the host renamed, even when isolation is broken.
		_ = unix.Sethostname([]byte(before))
	}
	return nil
}
