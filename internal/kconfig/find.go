package kconfig

import (
	"errors"
	"fmt"
	"io/fs"
)

// Candidates are the places a running kernel's config is looked for, in
// order: the kernel's own copy (CONFIG_IKCONFIG_PROC), then where distros
// and kernel builds install it.
func Candidates(release string) []string {
	return []string{
		"/proc/config.gz",
		"/boot/config-" + release,
		"/lib/modules/" + release + "/build/.config",
		"/lib/modules/" + release + "/config",
		"/usr/src/linux-" + release + "/.config",
	}
}

// Found is the outcome of looking for a config.
type Found struct {
	Config *Config
	// Tried lists each place looked at and what was there, in order.
	Tried []string
}

// Find parses the first of paths that exists and parses. A file that exists
// but does not parse is noted in Tried and skipped; finding none is not an
// error (Config is nil).
func Find(paths []string) Found {
	var f Found
	for _, p := range paths {
		c, err := ParseFile(p)
		switch {
		case err == nil:
			f.Config = c
			f.Tried = append(f.Tried, p+": used")
			return f
		case errors.Is(err, fs.ErrNotExist):
			f.Tried = append(f.Tried, p+": absent")
		default:
			f.Tried = append(f.Tried, fmt.Sprintf("%s: unusable (%v)", p, unwrapPath(err, p)))
		}
	}
	return f
}

// unwrapPath drops a leading "path: " that ParseFile adds.
func unwrapPath(err error, path string) string {
	s := err.Error()
	if len(s) > len(path)+2 && s[:len(path)+2] == path+": " {
		return s[len(path)+2:]
	}
	return s
}
