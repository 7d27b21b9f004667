// Package time holds the time namespace properties: offsets given to
// CLOCK_MONOTONIC and CLOCK_BOOTTIME of a new time namespace apply to the
// processes inside it (through the vDSO as through the system call), only
// there, only before anyone has entered, and never to CLOCK_REALTIME.
package time

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/timens"
	"github.com/nscheck/nscheck/prop"
)

// The offsets under test: large enough that no scheduling delay can be taken
// for them, small enough to stay far from any overflow.
const (
	monoOffset = 10 * 24 * time.Hour
	bootOffset = 12 * 24 * time.Hour
)

func offset(clock int32, d time.Duration) []timens.Offset {
	return []timens.Offset{{Clock: clock, Sec: int64(d / time.Second), Nsec: int64(d % time.Second)}}
}

var _ = prop.Register(prop.Property{
	ID:       "time.monotonic-offset",
	Title:    "a CLOCK_MONOTONIC offset applies inside a new time namespace, alike through the vDSO and clock_gettime(2); the host's clock is unchanged",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWTIME,
	Premises: []prop.Premise{sysTime},
	Check:    monotonicOffset,
})

var _ = prop.Register(prop.Property{
	ID:       "time.boottime-offset",
	Title:    "a CLOCK_BOOTTIME offset shows in /proc/uptime inside a new time namespace only",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWTIME,
	Premises: []prop.Premise{sysTime},
	Check:    boottimeOffset,
})

var _ = prop.Register(prop.Property{
	ID:       "time.realtime-rejected",
	Title:    "an offset for CLOCK_REALTIME is rejected (EINVAL) while one for CLOCK_MONOTONIC is taken",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWTIME,
	Premises: []prop.Premise{sysTime},
	Check:    realtimeRejected,
})

var _ = prop.Register(prop.Property{
	ID:       "time.offsets-frozen",
	Title:    "offsets of a time namespace cannot be changed once a process has entered it (EACCES), from inside or from the host",
	Needs:    prop.NeedUserns,
	Flag:     unix.CLONE_NEWTIME,
	Premises: []prop.Premise{sysTime},
	Check:    offsetsFrozen,
})

var _ = prop.Register(prop.Property{
	ID:    "time.children-only",
	Title: "unshare(CLONE_NEWTIME) leaves the caller in its time namespace; only its children enter the new one (ns/time vs ns/time_for_children)",
	Needs: prop.NeedUserns,
	Flag:  unix.CLONE_NEWTIME,
	Check: childrenOnly,
})

// hostClock is the observer's reading of a clock around the helper's.
type hostClock struct {
	before, after time.Duration
}

func readHost(clock int32) (time.Duration, error) {
	if clock == unix.CLOCK_BOOTTIME {
		return timens.Uptime()
	}
	return timens.Syscall(clock)
}

// shiftedClock runs a helper whose child enters a namespace with offset d
// for clock, and checks what the child reads (each of inside) against the
// host's reading of the same clock before and after, shifted by d. The
// host's own offsets and clock must not move.
func shiftedClock(t *prop.Trial, clock int32, d time.Duration, inside func(clockFacts) map[string]time.Duration) error {
	ownBefore, err := timens.Read(0)
	if err != nil {
		return err
	}
	var host hostClock
	if host.before, err = readHost(clock); err != nil {
		return err
	}
	p, f, err := start(t, setupArgs{Before: [][]timens.Offset{offset(clock, d)}, Enter: true})
	if err != nil {
		return err
	}
	if host.after, err = readHost(clock); err != nil {
		return err
	}
	seen, err := timens.Read(p.PID())
	if err != nil {
		return err
	}
	ownAfter, err := timens.Read(0)
	if err != nil {
		return err
	}
	name := timens.ClockName(clock)
	t.Inside("write "+name+" offset", f.Before[0].String())
	t.Inside("boottime (clock_gettime syscall)", f.Child.BootSyscall.String())
	t.Host(name+" before", host.before.String())
	t.Host(name+" after", host.after.String())
	t.Host(fmt.Sprintf("/proc/%d/timens_offsets", p.PID()), timens.Format(seen))
	t.Host("own timens_offsets before", timens.Format(ownBefore))
	t.Host("own timens_offsets after", timens.Format(ownAfter))
	lo, hi := host.before+d, host.after+d
	for src, v := range inside(*f.Child) {
		t.Inside(src, v.String())
		t.Expect(v >= lo && v <= hi, "inside, %s reads %v: not the host's %s shifted by %v (between %v and %v)", src, v, name, d, lo, hi)
	}
	t.Expect(timens.Lookup(seen, clock).Duration() == d, "the host sees %s offset %v for the helper's children, not %v", name, timens.Lookup(seen, clock).Duration(), d)
	t.Expect(timens.Format(ownBefore) == timens.Format(ownAfter), "the host's own offsets changed from %q to %q", timens.Format(ownBefore), timens.Format(ownAfter))
	t.Expect(host.after-host.before < d, "the host's %s moved by %v, as much as the offset %v", name, host.after-host.before, d)
	return nil
}

func monotonicOffset(t *prop.Trial) error {
	return shiftedClock(t, unix.CLOCK_MONOTONIC, monoOffset, func(c clockFacts) map[string]time.Duration {
		return map[string]time.Duration{"monotonic (vDSO)": c.MonoVDSO, "monotonic (clock_gettime syscall)": c.MonoSyscall}
	})
}

func boottimeOffset(t *prop.Trial) error {
	return shiftedClock(t, unix.CLOCK_BOOTTIME, bootOffset, func(c clockFacts) map[string]time.Duration {
		return map[string]time.Duration{"/proc/uptime": c.Uptime}
	})
}

func realtimeRejected(t *prop.Trial) error {
	realtime := offset(unix.CLOCK_REALTIME, time.Hour)
	p, f, err := start(t, setupArgs{Before: [][]timens.Offset{realtime, offset(unix.CLOCK_MONOTONIC, monoOffset)}})
	if err != nil {
		return err
	}
	seen, err := timens.Read(p.PID())
	if err != nil {
		return err
	}
	t.Inside("write realtime offset", f.Before[0].String())
	t.Inside("write monotonic offset", f.Before[1].String())
	t.Host(fmt.Sprintf("/proc/%d/timens_offsets", p.PID()), timens.Format(seen))
	t.Expect(f.Before[0].is(unix.EINVAL), "a CLOCK_REALTIME offset was not rejected with EINVAL: %s", f.Before[0])
	// The same namespace takes a valid offset: the EINVAL is about the clock.
	t.Expect(f.Before[1].Err == "", "a valid CLOCK_MONOTONIC offset was refused too: %s", f.Before[1])
	t.Expect(timens.Lookup(seen, unix.CLOCK_MONOTONIC).Duration() == monoOffset,
		"the host sees monotonic offset %v for the helper's children, not %v", timens.Lookup(seen, unix.CLOCK_MONOTONIC).Duration(), monoOffset)
	for _, o := range seen {
		t.Expect(o.Clock != unix.CLOCK_REALTIME, "the host sees a realtime offset: %s", o)
	}
	return nil
}

func offsetsFrozen(t *prop.Trial) error {
	first, second := offset(unix.CLOCK_MONOTONIC, monoOffset), offset(unix.CLOCK_MONOTONIC, 2*monoOffset)
	p, f, err := start(t, setupArgs{Before: [][]timens.Offset{first}, Enter: true, After: [][]timens.Offset{second}})
	if err != nil {
		return err
	}
	fromHost := writeOffsets(p.PID(), offset(unix.CLOCK_MONOTONIC, 3*monoOffset))
	seen, err := timens.Read(p.PID())
	if err != nil {
		return err
	}
	t.Inside("write before a process entered", f.Before[0].String())
	t.Inside("write after a process entered", f.After[0].String())
	t.Inside("child's monotonic (clock_gettime syscall)", f.Child.MonoSyscall.String())
	t.Host(fmt.Sprintf("write /proc/%d/timens_offsets", p.PID()), fromHost.String())
	t.Host(fmt.Sprintf("/proc/%d/timens_offsets", p.PID()), timens.Format(seen))
	// The first write must be taken, or the later refusals prove nothing.
	t.Expect(f.Before[0].Err == "", "the first write, before any process entered, was refused: %s", f.Before[0])
	t.Expect(f.After[0].is(unix.EACCES), "inside, a write after a process entered was not refused with EACCES: %s", f.After[0])
	t.Expect(fromHost.is(unix.EACCES), "from the host, a write after a process entered was not refused with EACCES: %s", fromHost)
	t.Expect(timens.Lookup(seen, unix.CLOCK_MONOTONIC).Duration() == monoOffset,
		"the namespace's monotonic offset is %v, not the first write's %v", timens.Lookup(seen, unix.CLOCK_MONOTONIC).Duration(), monoOffset)
	return nil
}

func childrenOnly(t *prop.Trial) error {
	own, err := nsfs.Of(0, "time")
	if err != nil {
		return err
	}
	p, f, err := start(t, setupArgs{Enter: true})
	if err != nil {
		return err
	}
	seenOwn, err := nsfs.Of(p.PID(), "time")
	if err != nil {
		return err
	}
	seenChildren, err := nsfs.Of(p.PID(), "time_for_children")
	if err != nil {
		return err
	}
	t.Inside("ns/time", f.Own.String())
	t.Inside("ns/time_for_children", f.ForChildren.String())
	t.Inside("child's ns/time", f.Child.NS.String())
	t.Host("own ns/time", own.String())
	t.Host(fmt.Sprintf("/proc/%d/ns/time", p.PID()), seenOwn.String())
	t.Host(fmt.Sprintf("/proc/%d/ns/time_for_children", p.PID()), seenChildren.String())
	t.Expect(f.Own == own && seenOwn == own, "the unsharing helper left the host's time namespace %s (it sees %s, the host sees %s)", own, f.Own, seenOwn)
	t.Expect(f.ForChildren != f.Own && seenChildren == f.ForChildren, "the helper's time_for_children (%s, host sees %s) is its own time namespace %s", f.ForChildren, seenChildren, f.Own)
	t.Expect(f.Child.NS == f.ForChildren, "the child is in time namespace %s, not its parent's time_for_children %s", f.Child.NS, f.ForChildren)
	return nil
}
