// Package initramfs writes the initramfs that `nscheck vm` boots: a cpio
// archive in the "newc" format (the one the kernel's initramfs unpacker
// reads), usually gzip-compressed.
//
// No mknod and no root are needed: directories, files and device nodes are
// records written straight into the archive, and the kernel creates them when
// it unpacks. The kernel needs /dev/console (char 5,1) in the archive for the
// init process to get a console before devtmpfs is mounted.
//
// # Format
//
// Every entry is a 110-byte ASCII header, the NUL-terminated name and the
// data, each padded to 4 bytes; the archive ends with the "TRAILER!!!" entry:
//
//	"070701" ino mode uid gid nlink mtime filesize devmajor devminor
//	         rdevmajor rdevminor namesize check      (13 fields, 8 hex digits each)
//	name "\0" pad4  data pad4
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Magic opens every newc header ("new ASCII" format without checksums).
const Magic = "070701"

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

const headerLen = 110

// File-type bits of Entry.Mode (as in stat(2)).
const (
	TypeMask = 0o170000
	TypeDir  = 0o040000
	TypeReg  = 0o100000
	TypeChr  = 0o020000
	TypeLink = 0o120000
)

// Entry is one archive member.
type Entry struct {
	// Name is the path inside the archive, without a leading "/".
	Name string
	// Mode holds the file type bits and the permissions.
	Mode uint32
	// RdevMajor and RdevMinor are the device numbers of a device node.
	RdevMajor, RdevMinor uint32
	// Data is the content of a regular file or the target of a symlink.
	Data []byte
}

// Writer writes a newc archive. Entries are written in the order given: a
// directory must come before what it contains (the kernel does not create
// parents).
type Writer struct {
	w      io.Writer
	ino    uint32
	n      int64 // bytes written, for the 4-byte padding
	closed bool
}

// NewWriter returns a Writer on w (which it does not close).
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, ino: 1} }

// Dir adds a directory.
func (w *Writer) Dir(name string, perm uint32) error {
	return w.Write(Entry{Name: name, Mode: TypeDir | perm&0o7777})
}

// File adds a regular file.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	return w.Write(Entry{Name: name, Mode: TypeReg | perm&0o7777, Data: data})
}

// CharDev adds a character device node.
func (w *Writer) CharDev(name string, perm, major, minor uint32) error {
	return w.Write(Entry{Name: name, Mode: TypeChr | perm&0o7777, RdevMajor: major, RdevMinor: minor})
}

// Write adds e.
func (w *Writer) Write(e Entry) error {
	if w.closed {
		return errors.New("cpio: write after close")
	}
	name, err := cleanName(e.Name)
	if err != nil {
		return err
	}
	switch e.Mode & TypeMask {
	case TypeReg, TypeLink:
	default:
		if len(e.Data) > 0 {
			return fmt.Errorf("cpio: %s: only files and symlinks have data", name)
		}
	}
	if uint64(len(e.Data)) > 0xffffffff {
		return fmt.Errorf("cpio: %s: larger than 4 GiB", name)
	}
	nlink := 1
	if e.Mode&TypeMask == TypeDir {
		nlink = 2
	}
	ino := w.ino
	w.ino++
	return w.record(name, ino, e.Mode, uint32(nlink), e.RdevMajor, e.RdevMinor, e.Data)
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.record(Trailer, 0, 0, 1, 0, 0, nil); err != nil {
		return err
	}
	w.closed = true
	return nil
}

func (w *Writer) record(name string, ino, mode, nlink, rmaj, rmin uint32, data []byte) error {
	// mtime 0 and uid/gid 0 make the archive reproducible.
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		Magic, ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	if err := w.put([]byte(hdr)); err != nil {
		return err
	}
	if err := w.put(append([]byte(name), 0)); err != nil {
		return err
	}
	if err := w.pad(); err != nil {
		return err
	}
	if err := w.put(data); err != nil {
		return err
	}
	return w.pad()
}

func (w *Writer) put(b []byte) error {
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: write: %w", err)
	}
	return nil
}

var zeros [4]byte

func (w *Writer) pad() error {
	if r := w.n % 4; r != 0 {
		return w.put(zeros[:4-r])
	}
	return nil
}

// cleanName checks a member name: relative, clean, no NUL, not the trailer.
func cleanName(name string) (string, error) {
	name = strings.TrimPrefix(name, "/")
	switch {
	case name == "" || name == Trailer:
		return "", fmt.Errorf("cpio: invalid name %q", name)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("cpio: name %q contains NUL", name)
	case path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../"):
		return "", fmt.Errorf("cpio: name %q is not clean", name)
	}
	return name, nil
}
