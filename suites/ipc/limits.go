package ipc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// msgmni is the per-IPC-namespace sysctl that ipc.limits-per-ns changes.
// The files under /proc/sys/kernel for IPC belong to the IPC namespace of
// the process that opens them, whatever proc mount it goes through.
const msgmni = "/proc/sys/kernel/msgmni"

type sysctlArgs struct {
	Path  string `json:"path"`
	Value int    `json:"value"`
	// Forbidden is the real host's IPC namespace (none in a control): a
	// helper in it writes nothing.
	Forbidden nsfs.ID `json:"forbidden"`
}

type sysctlFacts struct {
	HostNS bool `json:"host_ns,omitempty"`
	// Initial is the value the new namespace started with.
	Initial int `json:"initial"`
	After   int `json:"after"`
}

func init() {
	helper.Handle("ipc.sysctl-set", func(a sysctlArgs) (any, error) {
		if host, err := inHostNS(a.Forbidden); err != nil || host {
			return sysctlFacts{HostNS: host}, err
		}
		var f sysctlFacts
		var err error
		if f.Initial, err = readInt(a.Path); err != nil {
			return nil, err
		}
		if err := os.WriteFile(a.Path, []byte(strconv.Itoa(a.Value)), 0); err != nil {
			return nil, helper.Fail("write "+a.Path, err)
		}
		if f.After, err = readInt(a.Path); err != nil {
			return nil, err
		}
		return f, nil
	})
}

func readInt(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

var _ = prop.Register(limitProperty("ipc.limits-per-ns", msgmni))

// The limits of the other two kinds of IPC object, per IPC namespace too:
// POSIX message queues (CONFIG_POSIX_MQUEUE) and SysV shared memory.
const (
	queuesMax = "/proc/sys/fs/mqueue/queues_max"
	shmmni    = "/proc/sys/kernel/shmmni"
)

var _ = prop.Register(limitProperty("ipc.mqueue-limits-per-ns", queuesMax))
var _ = prop.Register(limitProperty("ipc.shm-limits-per-ns", shmmni))

// limitProperty is the property that the IPC limit at path (a file under
// /proc/sys) is per IPC namespace.
func limitProperty(id, path string) prop.Property {
	return prop.Property{
		ID:       id,
		Title:    "changing " + sysctlKey(path) + " inside a new IPC namespace takes effect there and leaves the host's value unchanged",
		Needs:    prop.NeedUserns,
		Flag:     unix.CLONE_NEWIPC,
		Premises: []prop.Premise{prop.ProcSysWritable("writing " + sysctlKey(path) + " inside the helper")},
		Check:    func(t *prop.Trial) error { return limitPerNS(t, path) },
	}
}

// sysctlKey names the sysctl at path as sysctl(8) does.
func sysctlKey(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
}

// limitPerNS changes the IPC limit at path (a file under /proc/sys) inside
// a new IPC namespace and compares both sides.
func limitPerNS(t *prop.Trial, path string) error {
	key := sysctlKey(path)
	before, err := readInt(path)
	if errors.Is(err, os.ErrNotExist) {
		return prop.Unmet(path+" does not exist: the kernel lacks the IPC objects it limits (CONFIG_POSIX_MQUEUE, CONFIG_SYSVIPC)", "")
	}
	if err != nil {
		return err
	}
	forbidden, err := guard(t)
	if err != nil {
		return err
	}
	// Any value but the host's (the observer never writes its own).
	value := 4321
	if value == before {
		value++
	}
	a := sysctlArgs{Path: path, Value: value, Forbidden: forbidden}
	p, err := t.Start(helper.Spec{Action: "ipc.sysctl-set", Args: a, Cloneflags: unix.CLONE_NEWIPC, Hold: true})
	if errors.Is(err, unix.EROFS) {
		return prop.Skip("/proc/sys is mounted read-only here (as container runtimes mount it), so no sysctl can be written, "+
			"not even in a new IPC namespace: %v; run nscheck on the host or with a writable /proc/sys", err)
	}
	if err != nil {
		return err
	}
	var inside sysctlFacts
	if err := p.Facts(&inside); err != nil {
		return err
	}
	if !expectOwnNS(t, inside.HostNS) {
		return nil
	}
	held, err := readInt(path)
	if err != nil {
		return err
	}
	t.Inside(key+".initial", inside.Initial)
	t.Inside(key+".written", value)
	t.Inside(key+".after", inside.After)
	t.Host(key+".before", before)
	t.Host(key+".while-held", held)
	t.Expect(inside.After == value, "inside, %s reads %d after writing %d", key, inside.After, value)
	t.Expect(held == before, "the host's %s changed from %d to %d", key, before, held)
	return nil
}
