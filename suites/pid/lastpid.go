package pid

import (
	"context"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/prop"
)

// ns_last_pid (CONFIG_CHECKPOINT_RESTORE) sets the PID that the next
// process of the writer's PID namespace gets, a tool of checkpoint/restore.
// Writing it takes CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the user
// namespace that owns that PID namespace: root of a user namespace nested
// below the owner must be refused, or it could steer the PIDs of processes
// it does not own.

const nsLastPID = "/proc/sys/kernel/ns_last_pid"

// lastPIDArgs asks a helper (init of a new PID namespace) to start a child
// in its namespace, in a new user namespace when UserNS, that writes the
// namespace's ns_last_pid back.
type lastPIDArgs struct {
	UserNS bool `json:"userns"`
}

type lastPIDFacts struct {
	Read  string `json:"read"`
	Write string `json:"write"`
}

func init() {
	helper.Handle("pid.last-pid-outer", func(a lastPIDArgs) (any, error) {
		// A proc of this PID namespace on /proc, in the mount namespace of
		// its own the guard has checked: os/exec (the start of a helper in a
		// user namespace off amd64) writes id maps through /proc/<pid>.
		if err := prop.PrepareSandbox(); err != nil {
			return nil, err
		}
		s := helper.Spec{Action: "pid.last-pid-write"}
		if a.UserNS {
			s.Cloneflags = unix.CLONE_NEWUSER
			s.UIDMappings, s.GIDMappings = helper.RootMapping()
		}
		var f lastPIDFacts
		err := helper.Run(context.Background(), s, &f)
		return f, err
	})
	helper.Handle("pid.last-pid-write", func(struct{}) (any, error) {
		var f lastPIDFacts
		v, err := os.ReadFile(nsLastPID)
		if f.Read = errname.Of(err); err != nil {
			return f, nil
		}
		f.Read = strings.TrimSpace(string(v))
		fd, err := unix.Open(nsLastPID, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			// The value read: the next PID of the namespace stays as it
			// would have been.
			_, err = unix.Write(fd, v)
			unix.Close(fd)
		}
		f.Write = errname.Of(err)
		return f, nil
	})
}

var _ = prop.Register(prop.Property{
	ID: "pid.ns-last-pid-owner-only",
	Title: "root of a user namespace nested below the owner of a PID namespace cannot write that namespace's ns_last_pid (EPERM): only " +
		"CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the owning user namespace can; the probe writes back the value it read",
	Needs: prop.NeedUserns,
	// The user namespace of the writer is what the control withholds; the
	// PID namespace is the helper's in both runs.
	Flag: unix.CLONE_NEWUSER,
	Premises: []prop.Premise{
		prop.ProcSysWritable("writing ns_last_pid"),
		prop.Creates(unix.CLONE_NEWPID|unix.CLONE_NEWNS, "the PID namespace whose ns_last_pid is written, with a proc of its own"),
		prop.NestedUserNS("the writer's user namespace, below the PID namespace's owner when rootless"),
	},
	Check: nsLastPIDOwnerOnly,
})

// nsLastPIDOwnerOnly: a helper cloned with CLONE_NEWPID (owned by the
// observer's user namespace, or its own when rootless) starts the writer in
// a new user namespace. The control withholds that namespace: the writer is
// root of the owner, and may.
func nsLastPIDOwnerOnly(t *prop.Trial) error {
	var in lastPIDFacts
	s := helper.Spec{Action: "pid.last-pid-outer", Args: lastPIDArgs{UserNS: t.Isolated}, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
	if err := t.Run(s, &in); err != nil {
		return err
	}
	t.Inside("writer in a user namespace of its own", t.Isolated)
	t.Inside("read "+nsLastPID, in.Read)
	t.Inside("write it back", in.Write)
	if errname.Is(in.Read, unix.ENOENT) {
		return prop.Unmet(nsLastPID+" does not exist: the kernel lacks CONFIG_CHECKPOINT_RESTORE", "build the kernel with CONFIG_CHECKPOINT_RESTORE=y to check it")
	}
	if errname.Is(in.Write, unix.EROFS) {
		return prop.Unmet(nsLastPID+" is on a read-only mount (as container runtimes mount /proc/sys): the write fails with EROFS before the kernel checks the writer's privilege",
			"run nscheck where /proc/sys is writable (on the host, or a privileged container)")
	}
	t.Expect(errname.Is(in.Write, unix.EPERM), "root of a user namespace below the PID namespace's owner wrote its ns_last_pid (%s, want EPERM)", in.Write)
	return nil
}
