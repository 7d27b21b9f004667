// Package procfile reads the /proc files the checks take their host-side
// evidence from, and that no other package of nscheck covers: the process
// and thread lists, a process's status, stat and cgroup files, its mount
// table (parsed by moby/sys/mountinfo) and its network namespace's
// net/tcp, net/unix and net/dev; and the splitter of the whitespace-aligned
// files that idmap and timens parse (Columns). Each parser reads only the
// fields the checks use and rejects what the kernel would never write.
//
// Why not prometheus/procfs, which covers all of these: this package is
// linked into the helper binary that nscheck executes some 340 times per
// run, and procfs's package initialiser compiles 22 regular expressions in
// every one of those processes (about 0.3 ms of each helper's start, more
// than any other package's initialisation). What the checks need fits in a
// few small parsers.
//
// As in nsfs, idmap and timens, pid 0 means this process (/proc/self).
package procfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Path is the file name below /proc/<pid>/ (pid 0: /proc/self/).
func Path(pid int, name string) string {
	who := "self"
	if pid > 0 {
		who = strconv.Itoa(pid)
	}
	return "/proc/" + who + "/" + name
}

// Procs lists the pids in /proc, in directory order: the processes of the
// PID namespace of the proc mounted there.
func Procs() ([]int, error) { return numbered("/proc") }

// Threads lists the tids of pid's threads (/proc/<pid>/task).
func Threads(pid int) ([]int, error) { return numbered(Path(pid, "task")) }

// numbered lists the entries of dir whose names are positive numbers.
func numbered(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []int
	for _, n := range names {
		if id, err := strconv.Atoi(n); err == nil && id > 0 && n[0] != '+' {
			out = append(out, id)
		}
	}
	return out, nil
}

// read parses the file at path with parse; errors name the file.
func read[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// lines calls fn with every line of r, numbered from 1, and stops at fn's
// first error, which it prefixes with the line number.
func lines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if err := fn(n, sc.Text()); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// Status is what the checks read of /proc/<pid>/status.
type Status struct {
	// UIDs and GIDs are the real, effective, saved and filesystem ids, as
	// the reader's user namespace sees them.
	UIDs, GIDs [4]uint64
	// CapEff is the effective capability set.
	CapEff uint64
	// NSpid is the pid in each PID namespace the process is in, from the
	// one of the proc mount read down to the process's own; nil before
	// Linux 4.1.
	NSpid []uint64
}

// ReadStatus parses /proc/<pid>/status (0: this process).
func ReadStatus(pid int) (Status, error) { return read(Path(pid, "status"), ParseStatus) }

// ReadThreadStatus parses the status of thread tid of process pid.
func ReadThreadStatus(pid, tid int) (Status, error) {
	return read(Path(pid, "task/"+strconv.Itoa(tid)+"/status"), ParseStatus)
}

// ParseStatus parses the text of a status file: "Name:\tvalue" lines, of
// which it needs Uid, Gid and CapEff and takes NSpid when present.
func ParseStatus(r io.Reader) (Status, error) {
	var s Status
	seen := map[string]bool{}
	err := lines(r, func(_ int, line string) error {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("no colon in %q", line)
		}
		if seen[key] {
			return fmt.Errorf("%s twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "Uid":
			err = parseIDs(value, &s.UIDs)
		case "Gid":
			err = parseIDs(value, &s.GIDs)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		case "NSpid":
			s.NSpid, err = parseNumbers(value)
			if err == nil && len(s.NSpid) == 0 {
				err = fmt.Errorf("NSpid is empty")
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return Status{}, err
	}
	for _, key := range []string{"Uid", "Gid", "CapEff"} {
		if !seen[key] {
			return Status{}, fmt.Errorf("no %s line", key)
		}
	}
	return s, nil
}

// parseIDs parses the four ids of a Uid or Gid line.
func parseIDs(value string, ids *[4]uint64) error {
	n, err := parseNumbers(value)
	if err != nil {
		return err
	}
	if len(n) != len(ids) {
		return fmt.Errorf("%d ids, want %d", len(n), len(ids))
	}
	for i, id := range n {
		if id > 1<<32-1 {
			return fmt.Errorf("id %d out of range", id)
		}
		ids[i] = id
	}
	return nil
}

// parseNumbers parses whitespace-separated decimal numbers.
func parseNumbers(value string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Fields(value) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Stat is what the checks read of /proc/<pid>/stat.
type Stat struct {
	// Comm is the command name (at most 15 bytes; it may hold spaces and
	// parentheses).
	Comm string
	// PPID is the parent's pid, as the reader's proc mount numbers it (0
	// when the parent is outside the PID namespace of that proc).
	PPID int
}

// ReadStat parses /proc/<pid>/stat (0: this process).
func ReadStat(pid int) (Stat, error) { return read(Path(pid, "stat"), ParseStat) }

// ParseStat parses the text of a stat file, "pid (comm) state ppid ...":
// comm ends at the last ")", the fields after it are separated by spaces.
func ParseStat(r io.Reader) (Stat, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return Stat{}, err
	}
	text := string(data)
	open, close := strings.IndexByte(text, '('), strings.LastIndexByte(text, ')')
	if open < 1 || close < open {
		return Stat{}, fmt.Errorf("no (comm) in %.40q", text)
	}
	if _, err := strconv.Atoi(strings.TrimSpace(text[:open])); err != nil {
		return Stat{}, fmt.Errorf("pid: %w", err)
	}
	rest := strings.Fields(text[close+1:])
	if len(rest) < 2 || len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("no state and ppid after the comm in %.40q", text)
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil || ppid < 0 {
		return Stat{}, fmt.Errorf("ppid %q", rest[1])
	}
	return Stat{Comm: text[open+1 : close], PPID: ppid}, nil
}

// Cgroup is one line of /proc/<pid>/cgroup.
type Cgroup struct {
	// HierarchyID is 0 for the cgroup2 (unified) hierarchy.
	HierarchyID int
	// Controllers is the comma-separated controller list of a cgroup v1
	// hierarchy ("cpu,cpuacct", "name=systemd"); "" for cgroup2.
	Controllers string
	// Path is the cgroup, relative to the root of the reader's cgroup
	// namespace ("/..." outside it).
	Path string
}

// ReadCgroups parses /proc/<pid>/cgroup (0: this process).
func ReadCgroups(pid int) ([]Cgroup, error) { return read(Path(pid, "cgroup"), ParseCgroups) }

// ParseCgroups parses the text of a cgroup file, "id:controllers:path"
// lines; the path may itself hold colons.
func ParseCgroups(r io.Reader) ([]Cgroup, error) {
	var out []Cgroup
	err := lines(r, func(_ int, line string) error {
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("not id:controllers:/path: %q", line)
		}
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || id[0] == '+' {
			return fmt.Errorf("hierarchy id %q", id)
		}
		out = append(out, Cgroup{HierarchyID: n, Controllers: controllers, Path: path})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Foreign says why /proc is not a proc of the caller's own PID namespace
// (no proc mounted, or one of an ancestor namespace: unshare --pid
// without --mount-proc, or a helper that is init of a new PID namespace
// in the host's mount namespace), or "" when it is. err is a failure to
// read /proc/self/status. A process number read from such a /proc names
// another process.
func Foreign() (why string, err error) {
	link, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Sprintf("/proc/self is unreadable (%v): no proc is mounted on /proc", err), nil
	}
	if link != strconv.Itoa(os.Getpid()) {
		// The numbers stay out of the reason: two processes (env and run)
		// must give the same one.
		return "/proc belongs to another PID namespace: /proc/self names this process by another PID than getpid()", nil
	}
	// The same number by chance: NSpid lists one PID per namespace from
	// the proc's down to this process's, so more than one means the proc
	// is of an ancestor.
	st, err := ReadStatus(0)
	if err != nil {
		return "", err
	}
	if len(st.NSpid) > 1 {
		return "/proc belongs to an ancestor PID namespace (its NSpid of this process has more than one PID)", nil
	}
	return "", nil
}
