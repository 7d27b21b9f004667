package timens

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

// runtimeNanotime is the Go runtime's CLOCK_MONOTONIC reading, taken through
// the vDSO where the platform has one (linux/amd64, arm64...). It is the only
// way to the vDSO's absolute monotonic time without cgo: time.Now keeps only
// a reading relative to the process's start. The runtime keeps this name
// linkable on purpose (go.dev/issue/67401).
//
//go:linkname runtimeNanotime runtime.nanotime
func runtimeNanotime() int64

// MonotonicVDSO reads CLOCK_MONOTONIC the way ordinary programs do: through
// the vDSO, which applies a time namespace's offsets in user space.
func MonotonicVDSO() time.Duration { return time.Duration(runtimeNanotime()) }

// Syscall reads a clock with the clock_gettime system call itself, which
// applies a time namespace's offsets in the kernel.
func Syscall(clock int32) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(%s): %w", ClockName(clock), err)
	}
	return time.Duration(ts.Nano()), nil
}

// Uptime reads the first field of /proc/uptime, the CLOCK_BOOTTIME of the
// reader's time namespace, to the hundredth of a second the file shows.
func Uptime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, fmt.Errorf("read /proc/uptime: %w", err)
	}
	d, err := ParseUptime(string(data))
	if err != nil {
		return 0, fmt.Errorf("parse /proc/uptime: %w", err)
	}
	return d, nil
}

// ParseUptime parses the first field of /proc/uptime ("12345.67 ...").
func ParseUptime(s string) (time.Duration, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	secs, frac, ok := strings.Cut(first, ".")
	n, err1 := strconv.ParseUint(secs, 10, 32)
	c, err2 := strconv.ParseUint(frac, 10, 8)
	if !ok || len(frac) != 2 || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("uptime %q is not seconds with two decimals", first)
	}
	return time.Duration(n)*time.Second + time.Duration(c)*UptimeResolution, nil
}

// UptimeResolution is the granularity of Uptime.
const UptimeResolution = 10 * time.Millisecond
