package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/prop"
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
