package helper

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds a helper that sets no Spec.Timeout: the whole life
// of the helper, from clone to reply, and again from release to reap.
var DefaultTimeout = 5 * time.Second

// SelfExe is the binary that helpers re-execute.
const SelfExe = "/proc/self/exe"

// Spec says what to run and in which new namespaces.
type Spec struct {
	// Action is the name a handler was registered under with Handle.
	Action string
	// Args is marshalled to JSON and handed to the action.
	Args any
	// Cloneflags are the CLONE_NEW* flags the child is created with.
	Cloneflags uintptr
	// UIDMappings and GIDMappings map ids when Cloneflags has CLONE_NEWUSER.
	UIDMappings []syscall.SysProcIDMap
	GIDMappings []syscall.SysProcIDMap
	// Credential, when set, makes the helper run as another uid/gid.
	Credential *syscall.Credential
	// Fork makes the clone a fork rather than a vfork (CLONE_VM), for the
	// kernels that refuse CLONE_VM into a pending time namespace (6.1).
	// Only a child that gets a user namespace can be forked (os/exec
	// vforks every other one): it needs CLONE_NEWUSER among Cloneflags.
	Fork bool
	// Hold keeps the helper alive after its reply until Release.
	Hold bool
	// Handshake gives the helper a pipe on fd 5: its action reports a
	// first result on it (SendHandshake) before the reply, which the
	// parent reads with Process.Handshake (see Spawn).
	Handshake bool
	// Detached starts the helper without a parent-death signal and with
	// stderr on /dev/null: it outlives its parent (an orphan, what an init
	// leaves behind). Whoever owns it kills it (Close) or it bounds its
	// own life.
	Detached bool
	// Timeout bounds the helper; zero means DefaultTimeout.
	Timeout time.Duration
	// Exe overrides the binary to execute (see Exe); tests and benchmarks.
	Exe string
}

func (s Spec) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// RootMapping maps root inside a new user namespace to the caller's ids
// outside: the mapping an unprivileged user may write for itself.
func RootMapping() (uids, gids []syscall.SysProcIDMap) {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		[]syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
}

// Command builds the child's *exec.Cmd without side effects: reply is the
// write end the child answers on (fd 3), request the read end it reads its
// Request from (fd 4). The returned command is not started.
func Command(s Spec, reply, request *os.File) *exec.Cmd {
	exe := s.Exe
	if exe == "" {
		exe = Exe()
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"nscheck-helper", s.Action},
		Env:        helperEnv(os.Environ()),
		ExtraFiles: []*os.File{reply, request},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  s.Cloneflags,
			Pdeathsig:   syscall.SIGKILL,
			UidMappings: s.UIDMappings,
			GidMappings: s.GIDMappings,
			Credential:  s.Credential,
		},
		WaitDelay: time.Second,
	}
	return cmd
}

// TimeoutEnvVar carries DefaultTimeout to helpers, so that the helpers they
// spawn in turn get the deadline the user chose (--helper-timeout).
const TimeoutEnvVar = "NSCHECK_HELPER_TIMEOUT"

// RunEnvVar tags every helper with the run that started it, helpers of
// helpers included: the host guard finds a helper left behind by this tag
// in /proc/<pid>/environ, without mistaking another run's helpers for ours.
const RunEnvVar = "NSCHECK_RUN"

// RunTag is the tag of this process's run: the one it inherited as a
// helper, or its own pid and start time.
var RunTag = sync.OnceValue(func() string {
	if tag := os.Getenv(RunEnvVar); tag != "" {
		return tag
	}
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
})

// helperEnv is the parent's environment with helper mode switched on, the
// default deadline passed down and the run's tag. Helpers run with
// GOMAXPROCS=1: they mostly wait on the kernel and on their own helpers,
// and a Go runtime with one P starts measurably faster (no second P to
// set up, no extra thread spun up to run it).
func helperEnv(env []string) []string {
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case EnvVar, TimeoutEnvVar, RunEnvVar, handshakeEnvVar, "GOMAXPROCS":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GOMAXPROCS=1", TimeoutEnvVar+"="+DefaultTimeout.String(), EnvVar+"=1", RunEnvVar+"="+RunTag())
}

// ignoredFlags are the CLONE_NEW* flags that Spawn silently leaves out of
// every clone, as a kernel that ignores them would: a fault that tests
// inject (IgnoreCloneFlags), zero otherwise.
var ignoredFlags uintptr

// IgnoreEnvVar carries ignoredFlags to the helpers of a process that
// injects the fault, so that their helpers lose the flags too. Only test
// binaries read it (from their TestMain, through IgnoreCloneFlagsFromEnv):
// nscheck itself never does.
const IgnoreEnvVar = "NSCHECK_TEST_IGNORE_CLONE_FLAGS"

// IgnoreCloneFlags injects a fault for tests: from now on every helper
// this process spawns (and every helper those spawn) is cloned without
// flags, silently, while it still believes it asked for them, as on a
// kernel that ignores them. Everything that spawns a helper sees the
// kernel it would see there; the namespace guard must catch it. Not for
// CLONE_NEWUSER (the id maps need it). Zero turns the fault off.
func IgnoreCloneFlags(flags uintptr) {
	ignoredFlags = flags &^ unix.CLONE_NEWUSER
	if ignoredFlags == 0 {
		os.Unsetenv(IgnoreEnvVar)
		return
	}
	os.Setenv(IgnoreEnvVar, strconv.FormatUint(uint64(ignoredFlags), 10))
}

// IgnoreCloneFlagsFromEnv is IgnoreCloneFlags for the helpers of a test
// binary that injects the fault: call it from TestMain before Main. Only
// test binaries call it, so the fault can never be set in nscheck.
func IgnoreCloneFlagsFromEnv() {
	if v, err := strconv.ParseUint(os.Getenv(IgnoreEnvVar), 10, 64); err == nil {
		ignoredFlags = uintptr(v) &^ unix.CLONE_NEWUSER
	}
}

var flagNames = []struct {
	flag uintptr
	name string
}{
	{unix.CLONE_NEWNS, "CLONE_NEWNS"},
	{unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
	{unix.CLONE_NEWIPC, "CLONE_NEWIPC"},
	{unix.CLONE_NEWPID, "CLONE_NEWPID"},
	{unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{unix.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	{unix.CLONE_NEWTIME, "CLONE_NEWTIME"},
}

// FlagNames renders CLONE_NEW* flags as "CLONE_NEWUTS|CLONE_NEWPID"; "0" for none.
func FlagNames(flags uintptr) string {
	var names []string
	for _, f := range flagNames {
		if flags&f.flag != 0 {
			names = append(names, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 {
		names = append(names, "0x"+strconv.FormatUint(uint64(flags), 16))
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}
