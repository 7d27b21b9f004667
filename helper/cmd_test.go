package helper

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The builder is pure: these tests need no privilege and start nothing.
func TestCommandBuildsReexec(t *testing.T) {
	reply, request := os.NewFile(100, "reply"), os.NewFile(101, "request")
	uids, gids := RootMapping()
	s := Spec{
		Action:      "uts.sethostname",
		Cloneflags:  unix.CLONE_NEWUTS | unix.CLONE_NEWUSER,
		UIDMappings: uids,
		GIDMappings: gids,
	}
	cmd := Command(s, reply, request)
	if cmd.Path != SelfExe {
		t.Errorf("Path = %q, want %q", cmd.Path, SelfExe)
	}
	if !slices.Equal(cmd.Args, []string{"nscheck-helper", "uts.sethostname"}) {
		t.Errorf("Args = %q", cmd.Args)
	}
	if len(cmd.ExtraFiles) != 2 || cmd.ExtraFiles[0] != reply || cmd.ExtraFiles[1] != request {
		t.Errorf("ExtraFiles must be reply (fd 3) then request (fd 4), got %v", cmd.ExtraFiles)
	}
	attr := cmd.SysProcAttr
	if attr.Cloneflags != s.Cloneflags {
		t.Errorf("Cloneflags = %#x, want %#x", attr.Cloneflags, s.Cloneflags)
	}
	if attr.Pdeathsig != syscall.SIGKILL {
		t.Errorf("Pdeathsig = %v, want SIGKILL", attr.Pdeathsig)
	}
	if len(attr.UidMappings) != 1 || attr.UidMappings[0].HostID != os.Geteuid() || attr.UidMappings[0].ContainerID != 0 {
		t.Errorf("UidMappings = %+v", attr.UidMappings)
	}
	if n := countEnv(cmd.Env, EnvVar+"="); n != 1 || !slices.Contains(cmd.Env, EnvVar+"=1") {
		t.Errorf("env must hold %s=1 exactly once, has %d", EnvVar, n)
	}
	if cmd.WaitDelay <= 0 {
		t.Error("WaitDelay must bound the wait for the stderr copy")
	}
}

func TestCommandOverridesInheritedHelperMode(t *testing.T) {
	env := helperEnv([]string{"A=1", EnvVar + "=0", "B=2", RunEnvVar + "=other"})
	if countEnv(env, EnvVar+"=") != 1 || !slices.Contains(env, EnvVar+"=1") {
		t.Errorf("helperEnv = %q", env)
	}
	// Every helper carries this run's tag, once.
	if countEnv(env, RunEnvVar+"=") != 1 || !slices.Contains(env, RunEnvVar+"="+RunTag()) || RunTag() == "" {
		t.Errorf("helperEnv = %q, want the run tag %q", env, RunTag())
	}
}

func TestCommandCredentialAndExe(t *testing.T) {
	cred := &syscall.Credential{Uid: 65534, Gid: 65534}
	cmd := Command(Spec{Action: "x", Credential: cred, Exe: "/bin/true"}, nil, nil)
	if cmd.SysProcAttr.Credential != cred || cmd.Path != "/bin/true" {
		t.Errorf("credential or exe not applied: %+v %q", cmd.SysProcAttr.Credential, cmd.Path)
	}
}

func TestFlagNames(t *testing.T) {
	cases := map[uintptr]string{
		0:                                     "0",
		unix.CLONE_NEWUTS:                     "CLONE_NEWUTS",
		unix.CLONE_NEWNS | unix.CLONE_NEWPID:  "CLONE_NEWNS|CLONE_NEWPID",
		unix.CLONE_NEWTIME | unix.CLONE_VFORK: "CLONE_NEWTIME|0x4000",
	}
	for in, want := range cases {
		if got := FlagNames(in); got != want {
			t.Errorf("FlagNames(%#x) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorCarriesErrno(t *testing.T) {
	e := Fail("sethostname", unix.EPERM)
	if e.Errno != int(unix.EPERM) || Errno(e) != unix.EPERM || !strings.Contains(e.Error(), "sethostname") {
		t.Errorf("Fail lost the errno or op: %+v", e)
	}
}

func countEnv(env []string, prefix string) int {
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, prefix) {
			n++
		}
	}
	return n
}
