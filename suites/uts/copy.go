package uts

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// copyArgs drive the creator of uts.starts-as-copy.
type copyArgs struct {
	// Creator are the names the creator gives its own namespace first.
	Creator   Names   `json:"creator"`
	Forbidden nsfs.ID `json:"forbidden"`
	// ChildFlags are the clone flags of the creator's child.
	ChildFlags uintptr `json:"child_flags"`
	// Rename is the hostname the child sets once it has read its names.
	Rename string `json:"rename"`
}

// copyFacts is what the creator saw.
type copyFacts struct {
	Creator      Names `json:"creator"`
	ChildAtStart Names `json:"child_at_start"`
	CreatorAfter Names `json:"creator_after"`
}

func init() {
	helper.Handle("uts.copy-creator", copyCreator)
	helper.Handle("uts.copy-child", func(rename string) (any, error) {
		start, err := Get()
		if err != nil {
			return nil, err
		}
		if err := unix.Sethostname([]byte(rename)); err != nil {
			return nil, helper.Fail("sethostname", err)
		}
		return start, nil
	})
}

// copyCreator names its own namespace, starts a child in a new one that
// reports the names it starts with and renames itself, then reads its own
// names again.
func copyCreator(a copyArgs) (any, error) {
	if err := set(setArgs{Kind: hostname.kind, Value: a.Creator.Hostname, Forbidden: a.Forbidden}); err != nil {
		return nil, err
	}
	if err := set(setArgs{Kind: domainname.kind, Value: a.Creator.Domainname, Forbidden: a.Forbidden}); err != nil {
		return nil, err
	}
	var f copyFacts
	var err error
	if f.Creator, err = Get(); err != nil {
		return nil, err
	}
	child := helper.Spec{Action: "uts.copy-child", Args: a.Rename, Cloneflags: a.ChildFlags}
	if err := helper.Run(context.Background(), child, &f.ChildAtStart); err != nil {
		return nil, err
	}
	if f.CreatorAfter, err = Get(); err != nil {
		return nil, err
	}
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID: "uts.starts-as-copy",
	Title: "a new UTS namespace starts with a copy of its creator's names (not the host's), " +
		"and the copy is independent: the child renaming itself leaves its creator's hostname",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWUTS,
	Check: startsAsCopy,
})

// startsAsCopy has a creator, in a UTS namespace of its own so that its names
// differ from the host's, create the namespace under test.
func startsAsCopy(t *prop.Trial) error {
	before, forbidden, err := baseline(t)
	if err != nil {
		return err
	}
	a := copyArgs{
		Creator:    Names{Hostname: prop.UniqueName("nscheck-creator-"), Domainname: prop.UniqueName("nscheck-dom-")},
		Forbidden:  forbidden,
		ChildFlags: t.Nested(unix.CLONE_NEWUTS),
		Rename:     prop.UniqueName("nscheck-child-"),
	}
	var f copyFacts
	if err := t.Run(helper.Spec{Action: "uts.copy-creator", Args: a, Cloneflags: unix.CLONE_NEWUTS}, &f); err != nil {
		return err
	}
	t.Inside("child.names.at-start", f.ChildAtStart)
	t.Inside("child.renamed-to", a.Rename)
	t.Host("creator.names", f.Creator)
	t.Host("creator.names.after-child-renamed", f.CreatorAfter)
	t.Expect(f.ChildAtStart == f.Creator, "the new namespace started with %+v, not a copy of its creator's %+v", f.ChildAtStart, f.Creator)
	t.Expect(f.CreatorAfter == f.Creator, "the new namespace is shared, not a copy: the child's sethostname(%q) turned its creator's %+v into %+v",
		a.Rename, f.Creator, f.CreatorAfter)
	if err := expectHostKept(t, hostname, before); err != nil {
		return err
	}
	return expectHostKept(t, domainname, before)
}
