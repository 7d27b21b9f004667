package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/sysvipc"
	"github.com/nscheck/nscheck/prop"
)

// hangEnv registers, in the test binary only, a property whose helper never
// answers: the reliability tests use it to exercise deadlines, signals and
// cleanup on a real run.
const hangEnv = "NSCHECK_TEST_HANG"

const hangID = "zz-test.helper-hangs"

func init() {
	helper.Handle("test.hang", func(struct{}) (any, error) {
		time.Sleep(time.Hour)
		return nil, nil
	})
	if os.Getenv(hangEnv) != "1" {
		return
	}
	prop.Register(prop.Property{
		ID:    hangID,
		Title: "test only: a helper that never answers",
		Needs: prop.NeedUserns,
		Flag:  unix.CLONE_NEWUTS,
		Check: func(t *prop.Trial) error {
			_, err := t.Start(helper.Spec{Action: "test.hang", Cloneflags: unix.CLONE_NEWUTS, Hold: true})
			return err
		},
	})
}

// leakEnv registers, in the test binary only, a property that passes while
// it changes the observer's hostname, IPC objects and mounts: the host guard
// must catch it. Tests run it only inside a disposable sandbox playing the
// host, never on the real one.
const leakEnv = "NSCHECK_TEST_LEAK"

const leakID = "zz-test.leaks-into-host"

func init() {
	if os.Getenv(leakEnv) != "1" {
		return
	}
	prop.Register(prop.Property{
		ID:    leakID,
		Title: "test only: passes while changing the host",
		Needs: prop.NeedUserns,
		Flag:  unix.CLONE_NEWUTS,
		Check: func(t *prop.Trial) error {
			if t.Sandboxed {
				t.Expect(false, "the control always detects")
				return nil
			}
			if err := unix.Sethostname([]byte("leaked-by-a-probe")); err != nil {
				return err
			}
			if _, err := sysvipc.Msgget(sysvipc.RandomKey(), sysvipc.IPCCreat|0o600); err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "leak-")
			if err != nil {
				return err
			}
			return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")
		},
	})
}
