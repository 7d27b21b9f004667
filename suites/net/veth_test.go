package net

import (
	"errors"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/prop"
)

// A kernel without veth answers RTM_NEWLINK with EOPNOTSUPP ("Unknown
// device type"): the veth premise is unmet naming the module and the
// config option; a pair that was made, or not tried, is no skip.
func TestWithoutVethIsTheUnmetPremise(t *testing.T) {
	for _, outcome := range []string{"", errname.OK} {
		if err := skipWithoutVeth(outcome, "probing"); err != nil {
			t.Errorf("outcome %q: %v, want nil", outcome, err)
		}
	}
	err := skipWithoutVeth("ENOTSUP", "probing")
	var u *prop.UnmetError
	if !errors.As(err, &u) || !strings.Contains(u.Cause, "veth") || !strings.Contains(u.Fix, "modprobe veth") || !strings.Contains(u.Fix, "CONFIG_VETH") {
		t.Errorf("skipWithoutVeth(ENOTSUP) = %v, want the unmet veth premise naming modprobe veth and CONFIG_VETH", err)
	}
}
