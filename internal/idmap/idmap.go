// Package idmap reads and writes the id maps of user namespaces,
// /proc/<pid>/uid_map and gid_map, and translates ids through them.
//
// Each line of a map is an extent "inside outside count": count ids starting
// at inside, in the process's user namespace, are the ids starting at outside
// in the namespace of the process that reads the file (or, when the reader is
// in the same namespace, in its parent).
package idmap

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nscheck/nscheck/internal/procfile"
)

// MaxExtents is the kernel's limit on the lines of one map (since 4.15).
const MaxExtents = 340

// Extent maps Count ids from Inside (in the namespace) to Outside.
type Extent struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Count   uint32 `json:"count"`
}

// Map is the content of a uid_map or gid_map; empty until it is written.
type Map []Extent

// Identity maps every id to itself: the map of the initial user namespace.
var Identity = Map{{Inside: 0, Outside: 0, Count: 4294967295}}

// Path is the uid_map ("uid") or gid_map ("gid") file of pid (0 means self).
func Path(pid int, kind string) string {
	who := "self"
	if pid > 0 {
		who = strconv.Itoa(pid)
	}
	return "/proc/" + who + "/" + kind + "_map"
}

// Read parses the uid ("uid") or gid ("gid") map of pid (0 means self), as
// this process sees it.
func Read(pid int, kind string) (Map, error) {
	path := Path(pid, kind)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// Write writes m to the uid ("uid") or gid ("gid") map of pid in one
// write(2), as the kernel requires. A map can be written once.
func Write(pid int, kind string, m Map) error {
	return os.WriteFile(Path(pid, kind), []byte(m.String()), 0)
}

// Parse parses the text of a map. It rejects what the kernel would never
// show: malformed lines, empty or overflowing extents, overlapping ranges on
// either side and more than MaxExtents lines.
func Parse(r io.Reader) (Map, error) {
	var m Map
	err := procfile.Columns(r, []string{"inside", "outside", "count"}, func(_ int, cols []string) error {
		var v [3]uint32
		for i, c := range cols {
			n, err := strconv.ParseUint(c, 10, 32)
			if err != nil {
				return fmt.Errorf("field %d: %w", i+1, err)
			}
			v[i] = uint32(n)
		}
		e := Extent{Inside: v[0], Outside: v[1], Count: v[2]}
		if err := e.valid(); err != nil {
			return err
		}
		for _, o := range m {
			if overlaps(o.Inside, o.Count, e.Inside, e.Count) || overlaps(o.Outside, o.Count, e.Outside, e.Count) {
				return fmt.Errorf("extent %v overlaps %v", e, o)
			}
		}
		if m = append(m, e); len(m) > MaxExtents {
			return fmt.Errorf("more than %d extents", MaxExtents)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (e Extent) valid() error {
	if e.Count == 0 {
		return fmt.Errorf("extent %v is empty", e)
	}
	if uint64(e.Inside)+uint64(e.Count) > 1<<32 || uint64(e.Outside)+uint64(e.Count) > 1<<32 {
		return fmt.Errorf("extent %v runs past 2^32", e)
	}
	return nil
}

func overlaps(a, n, b, m uint32) bool {
	return uint64(a) < uint64(b)+uint64(m) && uint64(b) < uint64(a)+uint64(n)
}

// ToOutside translates an id of the namespace to the reader's side.
func (m Map) ToOutside(inside uint32) (uint32, bool) {
	for _, e := range m {
		if inside >= e.Inside && uint64(inside) < uint64(e.Inside)+uint64(e.Count) {
			return e.Outside + (inside - e.Inside), true
		}
	}
	return 0, false
}

// ToInside translates an id of the reader's side into the namespace.
func (m Map) ToInside(outside uint32) (uint32, bool) {
	for _, e := range m {
		if outside >= e.Outside && uint64(outside) < uint64(e.Outside)+uint64(e.Count) {
			return e.Inside + (outside - e.Outside), true
		}
	}
	return 0, false
}

// String renders m in the format the kernel accepts on write.
func (m Map) String() string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.Inside, e.Outside, e.Count)
	}
	return b.String()
}

func (e Extent) String() string {
	return fmt.Sprintf("%d %d %d", e.Inside, e.Outside, e.Count)
}
