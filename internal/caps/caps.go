// Package caps reads this process's capability sets and names capabilities
// as the kernel and capabilities(7) do (CAP_SYS_TIME). A premise that needs a
// capability, and a diagnosis that explains a refusal by one missing, both
// ask here, so that a skip names the capability and the set it is missing
// from.
//
// It is a table and two system calls, not a library: the Go libraries that
// wrap libcap or parse /proc/<pid>/status bring far more than the names of
// 41 bits, and the helper binary links this package.
package caps

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a capability number (unix.CAP_*).
type Cap int

// names are the capabilities of Linux up to 6.x, by number.
var names = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// String is the capability's name, CAP_<N> for one this table lacks.
func (c Cap) String() string {
	if c >= 0 && int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("CAP_%d", int(c))
}

// Flag is the name as setpriv, capsh and docker --cap-add spell it, without
// the CAP_ prefix and in lower case (sys_time).
func (c Cap) Flag() string { return strings.ToLower(strings.TrimPrefix(c.String(), "CAP_")) }

// Parse finds a capability by name, with or without CAP_, in any case.
func Parse(name string) (Cap, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, s := range names {
		if s == n {
			return Cap(i), true
		}
	}
	return 0, false
}

// All lists the capabilities this table names.
func All() []Cap {
	out := make([]Cap, len(names))
	for i := range names {
		out[i] = Cap(i)
	}
	return out
}

// Set is a capability set as a bit mask.
type Set uint64

// Has reports whether c is in the set.
func (s Set) Has(c Cap) bool { return c >= 0 && c < 64 && s&(1<<uint(c)) != 0 }

// Names lists the capabilities of the set that the table names.
func (s Set) Names() []string {
	var out []string
	for _, c := range All() {
		if s.Has(c) {
			out = append(out, c.String())
		}
	}
	return out
}

// Missing lists the named capabilities the set lacks.
func (s Set) Missing() []string {
	var out []string
	for _, c := range All() {
		if !s.Has(c) {
			out = append(out, c.String())
		}
	}
	return out
}

// Sets are a process's capability sets.
type Sets struct {
	Effective, Permitted, Inheritable, Bounding, Ambient Set
}

// Self reads this process's capability sets: the first three with capget(2)
// (of the calling thread; Go sets them for every thread alike), the bounding
// and ambient sets bit by bit with prctl(2), which needs no /proc.
func Self() (Sets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return Sets{}, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) Set { return Set(uint64(hi)<<32 | uint64(lo)) }
	s := Sets{
		Effective:   join(data[0].Effective, data[1].Effective),
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}
	for c := Cap(0); c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break // EINVAL past the kernel's last capability
		}
		if in == 1 {
			s.Bounding |= 1 << uint(c)
		}
		if amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); err == nil && amb == 1 {
			s.Ambient |= 1 << uint(c)
		}
	}
	return s, nil
}
