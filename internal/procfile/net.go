package procfile

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The files below are those of the network namespace of the process whose
// /proc/<pid>/net is read: the host's view of a helper's namespace.

// TCPListen is the st column of a listening socket in net/tcp
// (TCP_LISTEN of include/net/tcp_states.h).
const TCPListen = 0x0a

// TCPSocket is what the checks read of a net/tcp row.
type TCPSocket struct {
	LocalPort uint16
	// State is the st column: a TCP state (TCPListen ...).
	State uint8
}

// ReadNetTCP parses /proc/<pid>/net/tcp (0: this process's namespace).
func ReadNetTCP(pid int) ([]TCPSocket, error) { return read(Path(pid, "net/tcp"), ParseNetTCP) }

// ParseNetTCP parses the text of net/tcp: a header, then one row per IPv4
// socket, "sl: local_address rem_address st ..." with hex addresses, ports
// and state.
func ParseNetTCP(r io.Reader) ([]TCPSocket, error) {
	var out []TCPSocket
	err := lines(r, func(n int, line string) error {
		f := strings.Fields(line)
		if n == 1 {
			if len(f) < 4 || f[0] != "sl" || f[1] != "local_address" {
				return fmt.Errorf("header %q is not net/tcp's", line)
			}
			return nil
		}
		if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
			return fmt.Errorf("not a socket row: %q", line)
		}
		addr, port, ok := strings.Cut(f[1], ":")
		if !ok || len(addr) != 8 || len(port) != 4 {
			return fmt.Errorf("local address %q", f[1])
		}
		if _, err := strconv.ParseUint(addr, 16, 32); err != nil {
			return fmt.Errorf("local address %q", f[1])
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return fmt.Errorf("local port %q", port)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil || len(f[3]) != 2 {
			return fmt.Errorf("state %q", f[3])
		}
		out = append(out, TCPSocket{LocalPort: uint16(p), State: uint8(st)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadNetUnix parses /proc/<pid>/net/unix (0: this process's namespace).
func ReadNetUnix(pid int) ([]string, error) { return read(Path(pid, "net/unix"), ParseNetUnix) }

// ParseNetUnix returns the bound names in the text of net/unix: a header,
// then "Num: RefCount Protocol Flags Type St Inode [Path]" per socket. A
// path is the rest of the row, spaces included; an abstract name starts
// with "@", and its NUL bytes read as "@" too. Unbound sockets are left out.
// Num is the socket's kernel address as %pK prints it: hashed hex, zeros
// under kptr_restrict, or ptrvalMarker while the hashing key is not ready
// (early in a boot on a machine without RDRAND, before the kernel's random
// pool is seeded).
func ParseNetUnix(r io.Reader) ([]string, error) {
	var out []string
	err := lines(r, func(n int, line string) error {
		if n == 1 {
			if !strings.HasPrefix(line, "Num ") || !strings.Contains(line, " Inode") {
				return fmt.Errorf("header %q is not net/unix's", line)
			}
			return nil
		}
		rest := line
		for i := range 7 {
			var field string
			field, rest = nextField(rest)
			if field == "" || i == 0 && !strings.HasSuffix(field, ":") {
				return fmt.Errorf("not a socket row: %q", line)
			}
			if i == 0 && field == ptrvalMarker+":" {
				continue
			}
			base := 16
			if i == 6 {
				base = 10 // the inode
			}
			if _, err := strconv.ParseUint(strings.TrimSuffix(field, ":"), base, 64); err != nil {
				return fmt.Errorf("column %d of %q: %w", i+1, line, err)
			}
		}
		if path, ok := strings.CutPrefix(rest, " "); ok && path != "" {
			out = append(out, path)
		} else if rest != "" {
			return fmt.Errorf("path of %q", line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ptrvalMarker is what the kernel prints for a hashed pointer before it
// can hash (lib/vsprintf.c).
const ptrvalMarker = "(____ptrval____)"

// nextField splits the first space-separated field off s (leading spaces
// skipped); rest starts at the space after it.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// ReadNetDev parses /proc/<pid>/net/dev (0: this process's namespace).
func ReadNetDev(pid int) ([]string, error) { return read(Path(pid, "net/dev"), ParseNetDev) }

// ParseNetDev returns the interface names in the text of net/dev, in file
// order: two header lines, then "name: 16 counters" per interface.
func ParseNetDev(r io.Reader) ([]string, error) {
	var out []string
	err := lines(r, func(n int, line string) error {
		if n <= 2 {
			if !strings.Contains(line, "|") {
				return fmt.Errorf("header %q is not net/dev's", line)
			}
			return nil
		}
		name, counters, ok := strings.Cut(line, ":")
		name = strings.TrimLeft(name, " ") // right-aligned, the colon right after it
		if !ok || name == "" || strings.ContainsAny(name, " \t/") {
			return fmt.Errorf("no interface name in %q", line)
		}
		f := strings.Fields(counters)
		if len(f) != 16 {
			return fmt.Errorf("%s: %d counters, want 16", name, len(f))
		}
		for _, c := range f {
			if _, err := strconv.ParseUint(c, 10, 64); err != nil {
				return fmt.Errorf("%s: counter %q", name, c)
			}
		}
		out = append(out, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
