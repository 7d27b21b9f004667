// Package timens reads and writes the clock offsets of time namespaces,
// /proc/<pid>/timens_offsets, and reads the clocks they shift.
//
// The file lists one offset per line, "<clock> <seconds> <nanoseconds>",
// for the time namespace the process's children are (or will be) created
// in, its time_for_children. Offsets can be written only until the first
// process enters that namespace; the kernel accepts CLOCK_MONOTONIC and
// CLOCK_BOOTTIME, by name or by number.
package timens

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/procfile"
)

// Offset shifts one clock of a time namespace.
type Offset struct {
	// Clock is the clock id (unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME).
	Clock int32 `json:"clock"`
	Sec   int64 `json:"sec"`
	Nsec  int64 `json:"nsec"`
}

// Names are the clock names the kernel uses in the file.
var names = map[int32]string{unix.CLOCK_MONOTONIC: "monotonic", unix.CLOCK_BOOTTIME: "boottime"}

// ClockName is the kernel's name of a clock id, or the number.
func ClockName(id int32) string {
	if n, ok := names[id]; ok {
		return n
	}
	return strconv.Itoa(int(id))
}

// Duration is the offset as a time.Duration.
func (o Offset) Duration() time.Duration {
	return time.Duration(o.Sec)*time.Second + time.Duration(o.Nsec)
}

func (o Offset) String() string {
	return fmt.Sprintf("%s %d %d", ClockName(o.Clock), o.Sec, o.Nsec)
}

// Path is the timens_offsets file of pid (0 means self). It belongs to the
// process, not to a thread: it is the time_for_children of the thread group
// leader.
func Path(pid int) string {
	who := "self"
	if pid > 0 {
		who = strconv.Itoa(pid)
	}
	return "/proc/" + who + "/timens_offsets"
}

// Read parses the offsets of pid's time_for_children namespace (0 means self).
func Read(pid int) ([]Offset, error) {
	path := Path(pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	offs, err := Parse(strings.NewReader(string(data)))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return offs, nil
}

// Write sets offsets of pid's time_for_children namespace (0 means self) in
// one write(2). It fails with EACCES once a process has entered it, with
// EINVAL for a clock that cannot be shifted, and with EPERM without
// CAP_SYS_TIME over the namespace.
func Write(pid int, offs []Offset) error {
	return os.WriteFile(Path(pid), []byte(Format(offs)), 0)
}

// Format renders offsets in the file's format: known clocks by name, any
// other by number (which the kernel parses, then rejects).
func Format(offs []Offset) string {
	var b strings.Builder
	for _, o := range offs {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Parse parses the text of a timens_offsets file.
func Parse(r io.Reader) ([]Offset, error) {
	var out []Offset
	err := procfile.Columns(r, []string{"clock", "seconds", "nanoseconds"}, func(_ int, cols []string) error {
		clock, err := parseClock(cols[0])
		if err != nil {
			return err
		}
		sec, err := strconv.ParseInt(cols[1], 10, 64)
		if err != nil {
			return fmt.Errorf("seconds: %w", err)
		}
		nsec, err := strconv.ParseInt(cols[2], 10, 64)
		if err != nil {
			return fmt.Errorf("nanoseconds: %w", err)
		}
		if nsec < 0 || nsec >= int64(time.Second) {
			return fmt.Errorf("nanoseconds %d out of [0, 1e9)", nsec)
		}
		out = append(out, Offset{Clock: clock, Sec: sec, Nsec: nsec})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func parseClock(s string) (int32, error) {
	for id, n := range names {
		if s == n {
			return id, nil
		}
	}
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("unknown clock %q", s)
	}
	return int32(id), nil
}

// Lookup returns the offset of clock in offs (zero when absent).
func Lookup(offs []Offset, clock int32) Offset {
	for _, o := range offs {
		if o.Clock == clock {
			return o
		}
	}
	return Offset{Clock: clock}
}
