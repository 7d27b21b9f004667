package uts

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// Nobody is the uid and gid uts.unprivileged-denied drops to.
const Nobody = 65534

// attemptFacts is what a helper saw when it tried to create a UTS namespace.
type attemptFacts struct {
	UID    uint64 `json:"uid"`
	EUID   uint64 `json:"euid"`
	CapEff string `json:"cap_eff"`
	// Clone is "allowed" or the errno of the refusal.
	Clone string `json:"clone"`
	Errno int    `json:"errno,omitempty"`
}

func init() {
	helper.Handle("uts.try-create", tryCreate)
}

// tryCreate clones a child with CLONE_NEWUTS and reports whether the kernel
// allowed it.
func tryCreate(struct{}) (any, error) {
	st, err := procfile.ReadStatus(0)
	if err != nil {
		return nil, err
	}
	f := attemptFacts{UID: st.UIDs[0], EUID: st.UIDs[1], CapEff: fmt.Sprintf("%016x", st.CapEff), Clone: "allowed"}
	err = helper.Run(context.Background(), helper.Spec{Action: "uts.names", Cloneflags: unix.CLONE_NEWUTS}, nil)
	var se *helper.StartError
	switch {
	case err == nil:
	case errors.As(err, &se):
		f.Errno = int(helper.Errno(se))
		f.Clone = unix.ErrnoName(syscall.Errno(f.Errno))
	default:
		return nil, err
	}
	return f, nil
}

var _ = prop.Register(prop.Property{
	ID: "uts.unprivileged-denied",
	Title: "a process dropped to uid/gid 65534, without a user namespace, cannot clone with CLONE_NEWUTS (EPERM); " +
		"control: the same attempt with privilege kept is allowed",
	// Root is needed to drop to another uid. The control does not withhold
	// a namespace: it keeps the privilege (see unprivilegedDenied).
	Needs:    prop.NeedRoot,
	Flag:     unix.CLONE_NEWUTS,
	Premises: []prop.Premise{prop.Capability(unix.CAP_SETUID, "starting a helper as uid 65534"), prop.Capability(unix.CAP_SETGID, "starting a helper as gid 65534"), prop.Capability(unix.CAP_SYS_PTRACE, "reading the ns files of a helper that runs as another user")},
	Check:    unprivilegedDenied,
})

// unprivilegedDenied has a helper, dropped to Nobody, try to create a UTS
// namespace. Its control is custom: withholding CLONE_NEWUTS would make the
// attempt meaningless, so in a control (t.Isolated false) the helper keeps
// the observer's privilege instead, and the very same attempt must then be
// allowed, which the check reports as the leak. That shows the check sees
// the difference between privileged and not.
//
// In the real run the observer first creates a UTS namespace itself: only
// when that works does an EPERM of the dropped helper say "no privilege"
// rather than "no UTS namespaces here at all" (a seccomp filter, a policy),
// which makes the property a skip naming the cause.
func unprivilegedDenied(t *prop.Trial) error {
	s := helper.Spec{Action: "uts.try-create", Hold: true}
	privilege := "kept (control: the same attempt, privilege not dropped)"
	if t.Isolated {
		if err := t.Run(helper.Spec{Action: "uts.names", Cloneflags: unix.CLONE_NEWUTS}, nil); err != nil {
			return err
		}
		t.Host("clone(CLONE_NEWUTS) with privilege", "allowed")
		s.Credential = &syscall.Credential{Uid: Nobody, Gid: Nobody}
		privilege = fmt.Sprintf("dropped to uid/gid %d, no user namespace", Nobody)
	}
	p, err := t.Start(s)
	var se *helper.StartError
	if errors.As(err, &se) && s.Credential != nil && helper.Errno(se) == unix.EACCES {
		return prop.Skip("uid %d cannot execute this binary (exec: EACCES) to run the helper; "+
			"make the binary and every directory above it world-executable (chmod o+x)", Nobody)
	}
	if err != nil {
		return err
	}
	var f attemptFacts
	if err := p.Facts(&f); err != nil {
		return err
	}
	st, err := procfile.ReadStatus(p.PID())
	if err != nil {
		return err
	}
	helperUser, err := nsfs.Of(p.PID(), "user")
	if err != nil {
		return err
	}
	ownUser, err := nsfs.Of(0, "user")
	if err != nil {
		return err
	}
	t.Inside("uid", f.UID)
	t.Inside("euid", f.EUID)
	t.Inside("CapEff", f.CapEff)
	t.Inside("clone(CLONE_NEWUTS)", f.Clone)
	t.Host("privilege", privilege)
	t.Host("helper.uids", st.UIDs)
	t.Host("helper.ns.user", helperUser.String())
	t.Host("own.ns.user", ownUser.String())
	t.Expect(helperUser == ownUser, "the helper is in user namespace %s, not the observer's %s", helperUser, ownUser)
	t.Expect(f.Errno == int(unix.EPERM), "clone(CLONE_NEWUTS) by uid %d (CapEff %s), without a user namespace, was %s, not refused with EPERM",
		f.EUID, f.CapEff, f.Clone)
	return nil
}
