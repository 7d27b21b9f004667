// Package kconfig reads a Linux kernel configuration (.config, /proc/config.gz)
// and says, from it alone, which namespace types that kernel can create and
// which of the options nscheck's properties depend on it has.
//
// It exists because the kernel's refusal to create a namespace ("unshare
// failed: Operation not permitted", EINVAL) does not say whether the feature
// is compiled out or merely switched off: the config answers the first
// question, for the running kernel and for one not booted yet (a distro
// kernel validated before it ships).
//
// The rules are keyed to the version in the config's own header ("# Linux/x86
// 6.1.192 Kernel Configuration"), not to the running kernel's: time
// namespaces exist from 5.6 on, cgroup namespaces from 4.6 on.
package kconfig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nscheck/nscheck/internal/report"
)

// MaxSize bounds a config after decompression (real ones are ~150 KiB).
const MaxSize = 8 << 20

// ErrInvalid marks input that is not a complete kernel config.
var ErrInvalid = errors.New("not a kernel config")

// Config is a parsed kernel configuration.
type Config struct {
	// Source says where the config came from (a path); set by the caller.
	Source string
	// Version is the kernel version of the header, normalised to X.Y.Z;
	// "" when the config has no version header.
	Version string
	// Arch is the architecture of the header ("x86"); may be "".
	Arch string
	// opts maps an option without its CONFIG_ prefix to its value: "y",
	// "m", a number or a quoted string, or "n" for "# CONFIG_X is not set".
	opts map[string]string
}

// gzipMagic starts every gzip stream (/proc/config.gz, config.gz copies).
var gzipMagic = []byte{0x1f, 0x8b}

// Parse reads a kernel config, gzip-compressed or not. It rejects what is
// not a complete config: binary data, a line that is neither an option nor
// a comment, a last line without its newline (a truncated file), and a
// config that never mentions CONFIG_NAMESPACES (Kconfig writes every visible
// option, set or not, so its absence means a fragment or a truncated file).
func Parse(r io.Reader) (*Config, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gunzip: %v", ErrInvalid, err)
		}
		defer zr.Close()
		return parseText(zr)
	}
	return parseText(br)
}

func parseText(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrInvalid, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: binary data", ErrInvalid)
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: truncated (the last line has no newline)", ErrInvalid)
	}
	c := &Config{opts: map[string]string{}}
	for n, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
		case strings.HasPrefix(line, "CONFIG_"):
			name, value, ok := option(line)
			if !ok {
				return nil, fmt.Errorf("%w: line %d: malformed option %s", ErrInvalid, n+1, clip(line))
			}
			c.opts[name] = value
		case strings.HasPrefix(line, "#"):
			if name, ok := notSet(line); ok {
				c.opts[name] = "n"
			} else if arch, version := header(line); version != "" && c.Version == "" {
				c.Arch, c.Version = arch, version
			}
		default:
			return nil, fmt.Errorf("%w: line %d is neither an option nor a comment: %s", ErrInvalid, n+1, clip(line))
		}
	}
	if _, ok := c.opts["NAMESPACES"]; !ok {
		return nil, fmt.Errorf("%w: CONFIG_NAMESPACES is neither set nor unset (a truncated file or a defconfig fragment?)", ErrInvalid)
	}
	return c, nil
}

// The lines of a config are matched by hand rather than with regular
// expressions: this package is linked into every helper process, and
// package-level regexps would be compiled at each helper's start.

// option splits "CONFIG_<NAME>=<value>".
func option(line string) (name, value string, ok bool) {
	rest, ok := strings.CutPrefix(line, "CONFIG_")
	if !ok {
		return "", "", false
	}
	name, value, ok = strings.Cut(rest, "=")
	return name, value, ok && isSymbol(name)
}

// notSet parses "# CONFIG_<NAME> is not set".
func notSet(line string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(line, "# CONFIG_")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(rest, " is not set")
	return name, ok && isSymbol(name)
}

// header parses the version header, "# Linux/x86 6.1.192 Kernel
// Configuration" (arch and version) or the older "# Linux kernel version:
// 5.4.0" (no arch); version is "" for any other line.
func header(line string) (arch, version string) {
	if rest, ok := strings.CutPrefix(line, "# Linux kernel version: "); ok {
		return "", NormalizeVersion(rest)
	}
	rest, ok := strings.CutPrefix(line, "# Linux/")
	if !ok {
		return "", ""
	}
	rest, ok = strings.CutSuffix(rest, " Kernel Configuration")
	arch, release, cut := strings.Cut(rest, " ")
	if !ok || !cut || arch == "" || hasSpace(arch) || hasSpace(release) {
		return "", ""
	}
	if version = NormalizeVersion(release); version == "" {
		return "", ""
	}
	return arch, version
}

// isSymbol reports whether s is a Kconfig symbol name: [A-Za-z0-9_]+.
func isSymbol(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		default:
			return false
		}
	}
	return s != ""
}

// hasSpace reports whether s holds a space, tab, form feed, CR or LF.
func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\n\f\r") }

// clip quotes at most 40 characters of s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// ParseFile reads and parses the config at path; Source is set to path.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open kernel config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Source = path
	return c, nil
}

// NormalizeVersion turns "6.1.192", "6.12.0-rc1" or "5.4" into "X.Y.Z";
// "" when s does not start with a version.
func NormalizeVersion(s string) string { return report.NormalizeVersion(s) }

// AtLeast reports whether version ("X.Y.Z") is at least major.minor; false
// when version is not one.
func AtLeast(version string, major, minor int) bool {
	f := strings.SplitN(NormalizeVersion(version), ".", 3)
	if len(f) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(f[0])
	mnr, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}

// Option states, as reported.
const (
	BuiltIn = "built-in"
	Module  = "module"
	Absent  = "absent"
)

// Value is the raw value of CONFIG_<name> and whether the config mentions
// it at all ("n" for "is not set").
func (c *Config) Value(name string) (string, bool) {
	v, ok := c.opts[name]
	return v, ok
}

// State is BuiltIn (=y), Module (=m) or Absent (not set, or not in the
// config because its dependencies are off); another value is returned as is.
func (c *Config) State(name string) string {
	switch v := c.opts[name]; v {
	case "y":
		return BuiltIn
	case "m":
		return Module
	case "", "n":
		return Absent
	default:
		return v
	}
}

// Has reports whether CONFIG_<name> is built in or a module.
func (c *Config) Has(name string) bool {
	s := c.State(name)
	return s == BuiltIn || s == Module
}

// Len is the number of options the config mentions.
func (c *Config) Len() int { return len(c.opts) }
