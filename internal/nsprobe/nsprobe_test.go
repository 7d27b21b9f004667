package nsprobe

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
)

// The test binary is its own helper, as nscheck is.
func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

// This machine lets root, and root in a user namespace of its own,
// create every namespace type: every probe comes back empty, one per type.
func TestAll(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: without it the probes without a user namespace are refused")
	}
	for _, userns := range []bool{false, true} {
		res := All(context.Background(), userns)
		if len(res) != len(nsfs.Types) {
			t.Errorf("userns %v: %d results, want one per type (%d)", userns, len(res), len(nsfs.Types))
		}
		for _, typ := range nsfs.Types {
			if r, ok := res[typ]; !ok || r != (Result{}) {
				t.Errorf("userns %v, %s: %+v (present %v), want created", userns, typ, r, ok)
			}
		}
	}
}

// As runs the probes as a real unprivileged user: on this machine
// (kernel.unprivileged_userns_clone=1) it may create a user namespace,
// and every other type inside one.
func TestAsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a helper as another uid")
	}
	res, err := As(context.Background(), 65534)
	if err != nil {
		if strings.Contains(err.Error(), "cannot start a helper as uid") {
			t.Skipf("uid 65534 cannot execute the test binary where go test put it: %v", err)
		}
		t.Fatal(err)
	}
	if u := res["user"]; u.Errno != 0 {
		t.Skipf("unprivileged user namespaces are refused here (a distro knob or an LSM; nscheck env explains which): %s", u.Err)
	}
	for _, typ := range nsfs.Types {
		if r, ok := res[typ]; !ok || r != (Result{}) {
			t.Errorf("%s as uid 65534: %+v (present %v), want created", typ, r, ok)
		}
	}
}
