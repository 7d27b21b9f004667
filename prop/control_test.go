package prop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
)

// A control whose sandbox (or a helper inside it) the kernel refused is a
// skip that the host explains; the sandbox leaves refusals unexplained.
func TestControlRefusalIsExplainedByTheHost(t *testing.T) {
	refused := &helper.StartError{Flags: unix.CLONE_NEWUTS, Err: unix.ENOSPC}
	// What crosses the boundary from the sandbox: a wire Error.
	wire := &helper.Error{Op: "", Errno: int(unix.ENOSPC), Msg: refused.Error(), CloneFlags: unix.CLONE_NEWUTS}
	if got := classifyEnv(refused); got != error(refused) {
		t.Errorf("classifyEnv explained a refusal: %v", got)
	}
	for _, err := range []error{wire, fmt.Errorf("control: %w", refused)} {
		skip, ok := asSkip(err)
		if !ok || !strings.Contains(skip.Reason, "ENOSPC") || !strings.Contains(skip.Reason, "user.max_") {
			t.Errorf("asSkip(%v) = %v, %v; want a skip naming ENOSPC and the limit", err, skip, ok)
		}
	}
	if skip, ok := asSkip(errors.New("helper crashed")); ok {
		t.Errorf("a harness error became a skip: %v", skip)
	}
	if got := classify(refused); !errors.As(got, new(*SkipError)) {
		t.Errorf("classify(refusal) = %v, want a skip", got)
	}
	if got := classify(unix.EROFS); !errors.As(got, new(*SkipError)) {
		t.Errorf("classify(EROFS) = %v, want a skip", got)
	}
}

// A helper that cannot start a helper as asked here (helper.SkipOp, as for
// id maps under a foreign /proc) makes the check a skip with its reason,
// from this process or from one nested helpers below, wrapped or not.
func TestWireSkipIsASkip(t *testing.T) {
	wire := &helper.Error{Op: helper.SkipOp, Msg: "this helper's new user namespace would get its id maps from Go's os/exec"}
	for _, err := range []error{wire, fmt.Errorf("pid.last-pid-outer: %w", wire)} {
		var skip *SkipError
		if got := classify(err); !errors.As(got, &skip) || skip.Reason != wire.Msg {
			t.Errorf("classify(%v) = %v, want a skip with the helper's reason", err, got)
		}
	}
	other := &helper.Error{Op: "sethostname", Errno: int(unix.EPERM), Msg: "operation not permitted"}
	var skip *SkipError
	if got := classify(other); errors.As(got, &skip) {
		t.Errorf("classify(%v) = a skip, want the harness error as it is", other)
	}
}
