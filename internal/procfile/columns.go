package procfile

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Columns calls fn with the fields of every non-blank line of r, numbered from
// 1, after checking that the line has exactly len(names) fields; names say
// what they are, for the error. It stops at fn's first error. It is the
// splitter of the whitespace-aligned files that idmap (uid_map, gid_map) and
// timens (timens_offsets) parse.
func Columns(r io.Reader, names []string, fn func(line int, cols []string) error) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		cols := strings.Fields(sc.Text())
		if len(cols) == 0 {
			continue
		}
		if len(cols) != len(names) {
			return fmt.Errorf("line %d: %d fields, want %s", line, len(cols), strings.Join(names, " "))
		}
		if err := fn(line, cols); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}
