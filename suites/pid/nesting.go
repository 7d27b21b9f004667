package pid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/prop"
	"github.com/nscheck/nscheck/internal/spawn"
)

// MaxLevel is the kernel's MAX_PID_NS_LEVEL: the initial PID namespace is
// level 0, and a namespace deeper than 32 cannot be created (ENOSPC).
const MaxLevel = 32

// nestTimeout bounds every link of the chain (three helper deadlines, 15 s
// by default); the trial bounds the whole.
func nestTimeout() time.Duration { return 3 * helper.DefaultTimeout }

// nestArgs ask a link of the chain to start the next one.
type nestArgs struct {
	// Remaining is how many more links to try to start below this one.
	Remaining int     `json:"remaining"`
	Flags     uintptr `json:"flags"`
	// Parent is the PID namespace of the link that started this one.
	Parent nsfs.ID `json:"parent"`
}

// nestFacts come back up the chain.
type nestFacts struct {
	// Links counts the links started below the one that reports (each
	// link adds itself on the way up).
	Links int `json:"links"`
	// Refused is the errno name of the clone that failed, if one did.
	Refused string `json:"refused,omitempty"`
	// Shared says that the reporting link is in its parent's PID
	// namespace: the chain stops there, as it does not nest.
	Shared bool `json:"shared,omitempty"`
	// DeepestNSpid is the NSpid of the deepest link, as it read it.
	DeepestNSpid []uint64 `json:"deepest_nspid"`
}

func init() {
	helper.Handle("pid.nest", nest)
}

// nest checks that it is one level below its parent, starts the next link
// (with Flags) and relays its facts up, adding itself; the deepest link,
// the one whose clone is refused or one that did not nest reports.
func nest(a nestArgs) (any, error) {
	own, err := nsfs.Of(0, "pid")
	if err != nil {
		return nil, err
	}
	if own == a.Parent {
		return deepest(nestFacts{Shared: true})
	}
	if a.Remaining == 0 {
		return deepest(nestFacts{})
	}
	var f nestFacts
	next := helper.Spec{Action: "pid.nest", Args: nestArgs{Remaining: a.Remaining - 1, Flags: a.Flags, Parent: own},
		Cloneflags: a.Flags, Timeout: nestTimeout()}
	err = helper.Run(context.Background(), next, &f)
	var se *helper.StartError
	switch {
	case errors.As(err, &se):
		return deepest(nestFacts{Refused: unix.ErrnoName(helper.Errno(se))})
	case err != nil:
		return nil, err
	}
	f.Links++
	return f, nil
}

// deepest completes the facts of the link that reports with its NSpid.
func deepest(f nestFacts) (nestFacts, error) {
	var err error
	f.DeepestNSpid, err = NSpid(0)
	return f, err
}

var _ = prop.Register(prop.Property{
	ID: "pid.nesting-limit",
	Title: "PID namespaces nest down to level 32 (a chain of helpers, each cloning the next with CLONE_NEWPID); " +
		"the next clone fails with ENOSPC",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWPID,
	Check: nestingLimit,
})

// initPidNSIno is the kernel's PROC_PID_INIT_INO: the inode of the
// initial PID namespace's nsfs file, the same on every boot.
const initPidNSIno = 0xEFFFFFFC

// nestingLimit starts a chain of helpers one link longer than the MaxLevel
// levels below the initial PID namespace: every link but the last must
// start, and the last clone must fail with ENOSPC. A control never nests
// (the flag is withheld), so its observer's own level does not matter.
func nestingLimit(t *prop.Trial) error {
	own, err := nsfs.Of(0, "pid")
	if err != nil {
		return err
	}
	if own.Ino != initPidNSIno && !t.Sandboxed {
		return prop.Skip("nscheck is not in the initial PID namespace (ns/pid inode %d, not %d), so how many levels are left "+
			"below it is unknown; run nscheck in the host's PID namespace", own.Ino, uint64(initPidNSIno))
	}
	data, err := os.ReadFile("/proc/sys/user/max_pid_namespaces")
	if err != nil {
		return err
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("parse user.max_pid_namespaces %q: %w", data, err)
	}
	if max < MaxLevel+1 {
		return prop.Skip("user.max_pid_namespaces is %d, fewer than the %d the chain creates; raise it with sysctl -w user.max_pid_namespaces=%d",
			max, MaxLevel+1, MaxLevel+1)
	}
	a := nestArgs{Remaining: MaxLevel, Flags: spawn.Nested(t, unix.CLONE_NEWPID), Parent: own}
	var f nestFacts
	if err := t.Run(helper.Spec{Action: "pid.nest", Args: a, Cloneflags: unix.CLONE_NEWPID, Timeout: nestTimeout()}, &f); err != nil {
		return err
	}
	links := f.Links + 1 // the first link, which the observer started
	t.Host("own ns/pid", own.String())
	t.Host("user.max_pid_namespaces", max)
	t.Inside("links started", links)
	t.Inside("deepest NSpid", f.DeepestNSpid)
	t.Inside(fmt.Sprintf("clone #%d", links+1), refusal(f))
	t.Inside("last link shares its parent's PID namespace", f.Shared)
	t.Expect(!f.Shared, "link %d is in its parent's PID namespace: the chain does not nest", links)
	t.Expect(links == MaxLevel, "%d nested PID namespaces were created, want %d", links, MaxLevel)
	t.Expect(f.Refused == unix.ErrnoName(unix.ENOSPC), "clone #%d gave %s, not ENOSPC", links+1, refusal(f))
	return nil
}

func refusal(f nestFacts) string {
	switch {
	case f.Shared:
		return "not tried"
	case f.Refused == "":
		return "allowed"
	}
	return f.Refused
}
