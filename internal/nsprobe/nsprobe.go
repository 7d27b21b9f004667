// Package nsprobe asks the kernel which namespace types this process (or
// an unprivileged user) may create, the only way that is sure: it creates
// each one in a helper that does nothing else.
//
// Its actions run inside helpers, so the lean helper binary links this
// package; the diagnosis that explains a refusal (internal/diag, which
// parses kernel configs, gzip-compressed ones included) stays out of it,
// and out of the start-up every helper pays.
package nsprobe

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
)

// Result is one probe's outcome as it crosses a process boundary: empty
// when the namespace was created.
type Result struct {
	// Errno is the kernel's refusal (0 when the helper could not be
	// started for another reason, or was).
	Errno int    `json:"errno,omitempty"`
	Err   string `json:"err,omitempty"`
}

const (
	noopAction   = "diag.noop"
	unprivAction = "diag.probe-unprivileged"
)

// Timeout bounds one probe helper.
const Timeout = 5 * time.Second

func init() {
	helper.Handle(noopAction, func(struct{}) (any, error) { return struct{}{}, nil })
	helper.Handle(unprivAction, func(struct{}) (any, error) {
		return All(context.Background(), true), nil
	})
}

// All creates each namespace type in a helper, by type. With userns the
// helper gets a new user namespace too, root inside mapped to this
// process's uid: what an unprivileged user can do.
func All(ctx context.Context, userns bool) map[string]Result {
	out := map[string]Result{}
	for _, typ := range nsfs.Types {
		s := helper.Spec{Action: noopAction, Cloneflags: nsfs.Flags[typ], Timeout: Timeout}
		if userns || typ == "user" {
			s.Cloneflags |= unix.CLONE_NEWUSER
			s.UIDMappings, s.GIDMappings = helper.RootMapping()
		}
		var r Result
		if err := helper.Run(ctx, s, nil); err != nil {
			r.Err = err.Error()
			var se *helper.StartError
			if errors.As(err, &se) {
				r.Errno = int(helper.Errno(se))
			}
		}
		out[typ] = r
	}
	return out
}

// As runs All(userns) in a helper running as uid (and gid) uid, no
// supplementary groups, no capabilities: a real unprivileged user.
func As(ctx context.Context, uid int) (map[string]Result, error) {
	s := helper.Spec{
		Action:     unprivAction,
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
		Timeout:    time.Duration(len(nsfs.Types)+1) * Timeout,
	}
	var out map[string]Result
	if err := helper.Run(ctx, s, &out); err != nil {
		var se *helper.StartError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("cannot start a helper as uid %d (%s): is the uid mapped here, and is the binary executable by it?", uid, errname.Of(se))
		}
		return nil, err
	}
	return out, nil
}
