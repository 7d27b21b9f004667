// Package suites links every property suite into a binary: importing it
// registers the whole catalog (specs and helper actions) with Ginkgo.
package suites

import (
	_ "github.com/nscheck/nscheck/suites/cgroup"
	_ "github.com/nscheck/nscheck/suites/ipc"
	_ "github.com/nscheck/nscheck/suites/mnt"
	_ "github.com/nscheck/nscheck/suites/net"
	_ "github.com/nscheck/nscheck/suites/ns"
	_ "github.com/nscheck/nscheck/suites/pid"
	_ "github.com/nscheck/nscheck/suites/time"
	_ "github.com/nscheck/nscheck/suites/user"
	_ "github.com/nscheck/nscheck/suites/uts"
)
