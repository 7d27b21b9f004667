package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrFormat marks input that is not a newc archive.
var ErrFormat = errors.New("cpio: not a newc archive")

// maxMember bounds what Read accepts for one member (the archive is read
// into memory).
const maxMember = 1 << 30

// Read parses a whole newc archive up to its trailer and returns its
// entries. It exists to check what Writer produced (tests, `nscheck vm`
// self-checks), so it keeps everything in memory.
func Read(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	var off int64
	var out []Entry
	for {
		var hdr [headerLen]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("%w: header at %d: %v", ErrFormat, off, err)
		}
		if string(hdr[:6]) != Magic {
			return nil, fmt.Errorf("%w: bad magic %q at %d", ErrFormat, hdr[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: header field %d at %d: %v", ErrFormat, i, off, err)
			}
			f[i] = uint32(v)
		}
		mode, size, rmaj, rmin, namesize := f[1], f[6], f[9], f[10], f[11]
		if namesize == 0 || namesize > 4096 || size > maxMember {
			return nil, fmt.Errorf("%w: implausible sizes at %d", ErrFormat, off)
		}
		off += headerLen
		name := make([]byte, int64(namesize)+pad4(off+int64(namesize)))
		if _, err := io.ReadFull(br, name); err != nil {
			return nil, fmt.Errorf("%w: name at %d: %v", ErrFormat, off, err)
		}
		off += int64(len(name))
		if name[namesize-1] != 0 {
			return nil, fmt.Errorf("%w: name at %d is not NUL-terminated", ErrFormat, off)
		}
		e := Entry{Name: string(name[:namesize-1]), Mode: mode, RdevMajor: rmaj, RdevMinor: rmin}
		if e.Name == Trailer {
			return out, nil
		}
		data := make([]byte, int64(size)+pad4(off+int64(size)))
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, fmt.Errorf("%w: data of %s: %v", ErrFormat, e.Name, err)
		}
		off += int64(len(data))
		if size > 0 {
			e.Data = data[:size]
		}
		out = append(out, e)
	}
}

// pad4 is the padding that brings off to a multiple of 4.
func pad4(off int64) int64 { return (4 - off%4) % 4 }
