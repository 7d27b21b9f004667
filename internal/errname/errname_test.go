package errname

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
)

func TestOf(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, OK},
		{unix.EPERM, "EPERM"},
		{fmt.Errorf("mount: %w", unix.EINVAL), "EINVAL"},
		{helper.Fail("setns", unix.EINVAL), "EINVAL"},
		{errors.New("no errno"), "no errno"},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("Of(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if !Is("ENOSPC", unix.ENOSPC) || Is("ok", unix.ENOSPC) {
		t.Error("Is disagrees with Of")
	}
}
