// Package nsfs identifies namespaces. Two processes share a namespace exactly
// when stat(2) of their /proc/<pid>/ns/<type> files gives the same (st_dev,
// st_ino); the inode alone (what procfs' Namespaces() returns) is not enough,
// since inode numbers are only unique within one nsfs device.
package nsfs

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Types are the namespace type names as they appear in /proc/<pid>/ns.
var Types = []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}

// Flags maps a namespace type name to its CLONE_NEW* flag.
var Flags = map[string]uintptr{
	"mnt":    unix.CLONE_NEWNS,
	"uts":    unix.CLONE_NEWUTS,
	"ipc":    unix.CLONE_NEWIPC,
	"pid":    unix.CLONE_NEWPID,
	"net":    unix.CLONE_NEWNET,
	"user":   unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP,
	"time":   unix.CLONE_NEWTIME,
}

// ID is a namespace's identity.
type ID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (id ID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// Path is the nsfs file of a namespace type for pid (0 means self).
func Path(pid int, typ string) string {
	who := "self"
	if pid > 0 {
		who = strconv.Itoa(pid)
	}
	return "/proc/" + who + "/ns/" + typ
}

// Of stats the nsfs file of a namespace type for pid (0 means self).
func Of(pid int, typ string) (ID, error) {
	return Stat(Path(pid, typ))
}

// Stat stats an nsfs file (or a bind mount of one).
func Stat(path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, nil
}
