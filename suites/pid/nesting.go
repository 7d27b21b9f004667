package pid

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/forkchain"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// MaxLevel is the kernel's MAX_PID_NS_LEVEL: the initial PID namespace is
// level 0, and a namespace deeper than 32 cannot be created (ENOSPC).
const MaxLevel = 32

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

// nest checks that it is one level below its parent and builds the rest of
// the chain below itself with raw clones (internal/forkchain: a helper exec
// per level would cost 33 Go start-ups); the deepest level reports.
func nest(a nestArgs) (any, error) {
	own, err := nsfs.Of(0, "pid")
	if err != nil {
		return nil, err
	}
	if own == a.Parent {
		nspid, err := NSpid(0)
		return nestFacts{Shared: true, DeepestNSpid: nspid}, err
	}
	r, err := forkchain.Run(forkchain.Spec{Flags: a.Flags, Levels: a.Remaining, NSType: "pid", Timeout: helper.DefaultTimeout})
	if err != nil {
		return nil, err
	}
	if r.Errno != 0 && r.Step != forkchain.StepClone {
		return nil, fmt.Errorf("link %d: %s: %w", r.Created+2, r.Step, r.Errno)
	}
	st, err := procfile.ParseStatus(strings.NewReader(r.Status))
	if err != nil {
		return nil, fmt.Errorf("status of the deepest link: %w", err)
	}
	f := nestFacts{Links: r.Created, Shared: r.Shared, DeepestNSpid: st.NSpid}
	if r.Shared {
		f.Links++ // the link that did not nest was started all the same
	}
	if r.Errno != 0 {
		f.Refused = unix.ErrnoName(r.Errno)
	}
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID: "pid.nesting-limit",
	Title: "PID namespaces nest down to level 32 (a chain of processes, each cloning the next with CLONE_NEWPID); " +
		"the next clone fails with ENOSPC",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWPID,
	Premises: []prop.Premise{nestingRoom},
	Check:    nestingLimit,
})

// initPidNSIno is the kernel's PROC_PID_INIT_INO: the inode of the
// initial PID namespace's nsfs file, the same on every boot.
const initPidNSIno = 0xEFFFFFFC

// nestingRoom is the premise of nesting-limit: the observer is in the
// initial PID namespace, the level the limit counts from, and
// user.max_pid_namespaces lets the chain reach the limit.
var nestingRoom = prop.Premise{Key: "pid-nesting-room", Why: "a chain of PID namespaces down to the limit", Probe: func(context.Context) error {
	own, err := nsfs.Of(0, "pid")
	if err != nil {
		return err
	}
	if own.Ino != initPidNSIno {
		return prop.Unmet(fmt.Sprintf("nscheck is not in the initial PID namespace (its ns/pid inode is not %d), so how many levels are left below it is unknown", uint64(initPidNSIno)),
			"run nscheck in the host's PID namespace")
	}
	max, err := maxPidNamespaces()
	if err != nil {
		return err
	}
	if max < MaxLevel+1 {
		return prop.Unmet(fmt.Sprintf("user.max_pid_namespaces is %d, fewer than the %d the chain creates", max, MaxLevel+1),
			fmt.Sprintf("raise it with sysctl -w user.max_pid_namespaces=%d", MaxLevel+1))
	}
	return nil
}}

// maxPidNamespaces reads user.max_pid_namespaces.
func maxPidNamespaces() (int, error) {
	data, err := os.ReadFile("/proc/sys/user/max_pid_namespaces")
	if err != nil {
		return 0, err
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse user.max_pid_namespaces %q: %w", data, err)
	}
	return max, nil
}

// nestingLimit starts a chain of processes one link longer than the MaxLevel
// levels below the initial PID namespace: every link but the last must
// start, and the last clone must fail with ENOSPC. A control never nests
// (the flag is withheld), so its observer's own level does not matter.
func nestingLimit(t *prop.Trial) error {
	own, err := nsfs.Of(0, "pid")
	if err != nil {
		return err
	}
	max, err := maxPidNamespaces()
	if err != nil {
		return err
	}
	a := nestArgs{Remaining: MaxLevel, Flags: t.Nested(unix.CLONE_NEWPID), Parent: own}
	var f nestFacts
	if err := t.Run(helper.Spec{Action: "pid.nest", Args: a, Cloneflags: unix.CLONE_NEWPID, Timeout: 2 * helper.DefaultTimeout}, &f); err != nil {
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
