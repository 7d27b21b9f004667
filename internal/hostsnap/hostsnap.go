// Package hostsnap photographs what nscheck promises to leave alone on the
// host (hostname, domain name, mount table, SysV and POSIX IPC objects,
// network interfaces, namespace limits and the sysctls properties touch,
// the transient cgroups the cgroup properties make under nscheck's own)
// and the helpers of this run still alive, so that a run can prove it left
// the host exactly as it found it, with no helper behind.
package hostsnap

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/internal/sysvipc"
	"github.com/nscheck/nscheck/prop"
)

// Sysctls are the /proc/sys files the snapshot records: the namespace limits
// and every sysctl a property changes inside its own namespace.
var Sysctls = []string{
	"user/max_cgroup_namespaces", "user/max_ipc_namespaces", "user/max_mnt_namespaces",
	"user/max_net_namespaces", "user/max_pid_namespaces", "user/max_time_namespaces",
	"user/max_user_namespaces", "user/max_uts_namespaces",
	"kernel/msgmni", "kernel/shmmni", "kernel/sem",
	"net/ipv4/ip_forward", "net/ipv4/ip_default_ttl", "net/ipv4/ip_local_port_range",
	"fs/mqueue/msg_max", "fs/mqueue/queues_max",
}

// Snapshot is the host's state in comparable form: each entry a sorted list
// of lines.
type Snapshot map[string][]string

// Take photographs the host as seen from this process's namespaces.
func Take() (Snapshot, error) {
	s := Snapshot{}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	s["hostname"] = []string{unix.ByteSliceToString(u.Nodename[:])}
	s["domainname"] = []string{unix.ByteSliceToString(u.Domainname[:])}

	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	s["mounts"] = mountLines(string(mi))

	for _, kind := range sysvipc.Kinds {
		objs, err := sysvipc.Read(kind)
		if err != nil {
			continue // no SYSVIPC in this kernel: nothing to change either
		}
		var lines []string
		for _, o := range objs {
			lines = append(lines, fmt.Sprintf("key=%#x id=%d", uint32(o.Key), o.ID))
		}
		s["sysvipc/"+kind] = sorted(lines)
	}
	if entries, err := os.ReadDir("/dev/mqueue"); err == nil {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		s["mqueue"] = sorted(names)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var links []string
	for _, i := range ifaces {
		links = append(links, fmt.Sprintf("%d:%s flags=%s", i.Index, i.Name, i.Flags))
	}
	s["interfaces"] = sorted(links)
	if cgs, ok := transientCgroups(); ok {
		s["cgroups"] = cgs
	}
	if s[HelpersKey], err = HelpersLeft(false); err != nil {
		return nil, err
	}
	for _, name := range Sysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			s["sysctl/"+strings.ReplaceAll(name, "/", ".")] = []string{strings.Join(strings.Fields(string(v)), " ")}
		}
	}
	return s, nil
}

// transientCgroups lists this run's cgroups (prop.RunNamePrefix) under
// this process's own cgroup2 cgroup: where the cgroup properties make
// theirs. Other cgroups come and go with the host's own services, or
// belong to another run beside this one, and are not this run's to watch.
// ok is false without a cgroup2 hierarchy.
func transientCgroups() (dirs []string, ok bool) {
	cgs, err := procfile.ReadCgroups(0)
	if err != nil {
		return nil, false
	}
	mounts, err := procfile.Mounts(0)
	if err != nil {
		return nil, false
	}
	prefix := prop.RunNamePrefix()
	for _, c := range cgs {
		if c.HierarchyID != 0 {
			continue
		}
		own, ok := procfile.Cgroup2Dir(c.Path, mounts)
		if !ok {
			return nil, false
		}
		entries, err := os.ReadDir(own)
		if err != nil {
			return nil, false
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				dirs = append(dirs, filepath.Join(own, e.Name()))
			}
		}
		return sorted(dirs), true
	}
	return nil, false
}

// HelpersKey is the snapshot entry that lists the helpers still alive.
const HelpersKey = "helpers left running"

// HelpersLeft lists the processes that carry this run's tag
// (helper.RunTag): its helpers, and theirs, still alive. With kill they are
// sent SIGKILL as well. It reads /proc with prometheus/procfs: the host
// side may pay its start-up cost once, where helpers (a few hundred starts
// per run) use internal/procfile.
func HelpersLeft(kill bool) ([]string, error) {
	procs, err := procfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	tag := helper.RunEnvVar + "=" + helper.RunTag()
	var out []string
	for _, p := range procs {
		if p.PID == os.Getpid() {
			continue
		}
		env, err := p.Environ()
		if err != nil || !slices.Contains(env, tag) {
			continue // gone, a zombie (no environment), or not ours
		}
		cmd, _ := p.CmdLine()
		out = append(out, fmt.Sprintf("pid %d: %s", p.PID, strings.Join(cmd, " ")))
		if kill {
			_ = unix.Kill(p.PID, unix.SIGKILL)
		}
	}
	return sorted(out), nil
}

// mountLines keeps the mount ID, parent, mount point, options and source of
// every mount: enough to see any mount or unmount or remount.
func mountLines(mountinfo string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return sorted(out)
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// Diff lists, in words, every difference from before to after; none means
// the host is as it was.
func Diff(before, after Snapshot) []string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		b, a := before[k], after[k]
		if slices.Equal(b, a) {
			continue
		}
		for _, line := range a {
			if !slices.Contains(b, line) {
				out = append(out, fmt.Sprintf("%s: appeared: %s", k, line))
			}
		}
		for _, line := range b {
			if !slices.Contains(a, line) {
				out = append(out, fmt.Sprintf("%s: disappeared: %s", k, line))
			}
		}
	}
	return out
}
