package diag

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errFormat marks procfs content that is not of the expected form.
var errFormat = errors.New("unexpected format")

// parseSysctl returns the value of a /proc/sys file: its one line without
// surrounding whitespace (tabs inside, as in kernel.sem, become single
// spaces). More than one line, control characters or invalid UTF-8 are
// rejected: no sysctl nscheck reads looks like that.
func parseSysctl(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%w: not text", errFormat)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%w: empty", errFormat)
	}
	for _, r := range s {
		if r == '\n' {
			return "", fmt.Errorf("%w: more than one line", errFormat)
		}
		if r < ' ' && r != '\t' || r == 0x7f {
			return "", fmt.Errorf("%w: control character %q", errFormat, r)
		}
	}
	return strings.Join(strings.Fields(s), " "), nil
}

// parseSysctlInt parses an integer sysctl (user.max_*_namespaces,
// kernel.unprivileged_userns_clone, ...).
func parseSysctlInt(data []byte) (int64, error) {
	s, err := parseSysctl(data)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not an integer", errFormat, s)
	}
	return n, nil
}

// idRange is one line of /proc/<pid>/uid_map: Count ids from Inside in the
// process's user namespace map to Outside in its parent's.
type idRange struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Count   uint32 `json:"count"`
}

// parseIDMap parses a uid_map or gid_map (up to 340 lines of three
// unsigned 32-bit fields; an empty map is valid: nothing written yet).
func parseIDMap(data []byte) ([]idRange, error) {
	var out []idRange
	for n, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: id map line %d has %d fields", errFormat, n+1, len(f))
		}
		var v [3]uint32
		for i, s := range f {
			x, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: id map line %d: %q is not a 32-bit id", errFormat, n+1, s)
			}
			v[i] = uint32(x)
		}
		if v[2] == 0 || uint64(v[0])+uint64(v[2]) > 1<<32-1 || uint64(v[1])+uint64(v[2]) > 1<<32-1 {
			return nil, fmt.Errorf("%w: id map line %d: range %d+%d out of bounds", errFormat, n+1, v[0], v[2])
		}
		out = append(out, idRange{Inside: v[0], Outside: v[1], Count: v[2]})
		if len(out) > 340 {
			return nil, fmt.Errorf("%w: id map has more than 340 lines", errFormat)
		}
	}
	return out, nil
}

// isInitialMap reports whether m is the identity map of the initial user
// namespace ("0 0 4294967295").
func isInitialMap(m []idRange) bool {
	return len(m) == 1 && m[0] == idRange{Inside: 0, Outside: 0, Count: 4294967295}
}

// param is one kernel command line parameter: "key=value" or a bare "key".
type param struct {
	Key      string
	Value    string
	HasValue bool
}

// parseCmdline splits /proc/cmdline into parameters as the kernel does:
// separated by whitespace, double quotes group spaces into a value
// (`key="a b"`) and are removed, and everything after a bare "--" belongs
// to init, not to the kernel.
func parseCmdline(data []byte) ([]param, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: command line is not text", errFormat)
	}
	var (
		out   []param
		tok   strings.Builder
		quote bool
		have  bool
	)
	flush := func() bool {
		if !have {
			return true
		}
		t := tok.String()
		tok.Reset()
		have = false
		if t == "--" {
			return false
		}
		k, v, ok := strings.Cut(t, "=")
		out = append(out, param{Key: k, Value: v, HasValue: ok})
		return true
	}
	for _, r := range string(data) {
		switch {
		case r == '"':
			quote = !quote
			have = true
			continue
		case !quote && (r == ' ' || r == '\t' || r == '\n'):
			if !flush() {
				return out, nil
			}
			continue
		case r < ' ' && r != '\t' && r != '\n':
			return nil, fmt.Errorf("%w: control character %q in the command line", errFormat, r)
		}
		tok.WriteRune(r)
		have = true
	}
	if quote {
		return nil, fmt.Errorf("%w: unterminated quote in the command line", errFormat)
	}
	flush()
	return out, nil
}
