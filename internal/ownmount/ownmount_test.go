package ownmount

import (
	"context"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/procfile"
)

// The test binary is its own helper, as nscheck is.
func TestMain(m *testing.M) {
	helper.Main()
	os.Exit(m.Run())
}

const target = "/tmp"

func init() {
	helper.Handle("ownmount.tmpfs", func(forbidden nsfs.ID) (any, error) {
		if err := Mount(forbidden, "tmpfs", target); err != nil {
			return nil, err
		}
		return tmpfsAt(target)
	})
}

// tmpfsAt reports whether the caller's mountinfo has a tmpfs at dir whose
// options carry nscheck's flags.
func tmpfsAt(dir string) (bool, error) {
	mounts, err := procfile.Mounts(0)
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.Mountpoint == dir && m.FSType == "tmpfs" && procfile.HasOption(m, "noexec") {
			return true, nil
		}
	}
	return false, nil
}

// In the forbidden namespace nothing is touched: safe to run on the host.
func TestRefusesForbiddenNamespace(t *testing.T) {
	own, err := nsfs.Of(0, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	err = Mount(own, "tmpfs", target)
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Mount in the forbidden namespace: %v, want a refusal", err)
	}
}

func TestMountStaysInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for CLONE_NEWNS without a user namespace")
	}
	own, err := nsfs.Of(0, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	before, err := tmpfsAt(target)
	if err != nil {
		t.Fatal(err)
	}
	var inside bool
	if err := helper.Run(context.Background(), helper.Spec{Action: "ownmount.tmpfs", Args: own, Cloneflags: unix.CLONE_NEWNS}, &inside); err != nil {
		t.Fatal(err)
	}
	if !inside {
		t.Error("the helper does not see its own tmpfs")
	}
	if after, err := tmpfsAt(target); err != nil || after != before {
		t.Errorf("the host's %s changed (tmpfs before %v, after %v, %v)", target, before, after, err)
	}
}
