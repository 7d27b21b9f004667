package zoo

import (
	"fmt"
	"strings"

	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/vm"
)

// RootlessUID is the unprivileged user the rootless environments run as
// (nobody on Debian).
const RootlessUID = "65534"

// SeccompEnvVar tells the zoo's test binary to install the nsdeny filter
// with the named errno (EPERM or ENOSYS) and then exec its arguments: the
// launcher of the seccomp environments.
const SeccompEnvVar = "NSCHECK_ZOO_SECCOMP"

// Host lists the environments entered from this host's root shell: the
// baseline, one per capability (caps is `setpriv --list-caps`), nested
// namespaces, a hardened service's /proc, rootless, seccomp (launcher is
// the program that installs the filter, see SeccompEnvVar) and each
// namespace type limited to zero.
func Host(caps []string, launcher string) []Env {
	envs := []Env{{Name: "root", Group: "root", What: "root shell of the host, every capability root has here"}}
	for _, c := range caps {
		envs = append(envs, Env{
			Name: "cap-" + c, Group: "caps",
			What:   fmt.Sprintf("root without CAP_%s (dropped from the bounding and inheritable sets)", strings.ToUpper(c)),
			Prefix: []string{"setpriv", "--inh-caps=-" + c, "--bounding-set=-" + c},
		})
	}
	envs = append(envs, Env{
		Name: "rootless", Group: "nested", What: "an unprivileged user (uid " + RootlessUID + ") on the host",
		Prefix: []string{"setpriv", "--reuid=" + RootlessUID, "--regid=" + RootlessUID, "--clear-groups"},
	})
	for _, rootless := range []bool{false, true} {
		for _, net := range []bool{false, true} {
			for _, proc := range []bool{false, true} {
				envs = append(envs, nested(rootless, net, proc))
			}
		}
	}
	// /proc as a hardened systemd service sees it (ProtectProc=invisible,
	// ProcSubset=pid): a proc instance of its own, in a mount namespace of
	// its own, that shows only the processes it may ptrace and nothing but
	// the pid directories (no /proc/sys, /proc/net, /proc/cgroups ...).
	for _, rootless := range []bool{false, true} {
		e := Env{Name: "proc-subset-pid", Group: "nested",
			What: "root in a mount namespace whose /proc is a proc of its own mounted hidepid=invisible,subset=pid (systemd's ProtectProc=invisible, ProcSubset=pid)",
			Prefix: []string{"unshare", "--mount", "--propagation", "private", "--",
				"sh", "-c", `mount -t proc -o hidepid=invisible,subset=pid proc /proc && exec "$@"`, "sh"}}
		if rootless {
			e.Name += "-rootless"
			e.What = strings.Replace(e.What, "root in", "uid "+RootlessUID+" in", 1)
			e.Prefix = append(e.Prefix, "setpriv", "--reuid="+RootlessUID, "--regid="+RootlessUID, "--clear-groups")
			// No CAP_SYS_ADMIN to mount a whole proc of its own: every
			// property skips, and the run says why once.
			e.Refusal = "/proc is mounted with subset=pid"
		}
		envs = append(envs, e)
	}
	for _, e := range []string{"EPERM", "ENOSYS"} {
		envs = append(envs, Env{
			Name: "seccomp-" + strings.ToLower(e), Group: "seccomp",
			What:   fmt.Sprintf("root under a seccomp filter: clone/unshare with CLONE_NEW* and setns fail with %s, clone3 with ENOSYS", e),
			Prefix: []string{launcher}, Env: []string{SeccompEnvVar + "=" + e},
		})
	}
	for _, t := range nsfs.Types {
		knob := "/proc/sys/user/max_" + t + "_namespaces"
		envs = append(envs, Env{
			Name: "max-" + t + "-0", Group: "limits",
			What: fmt.Sprintf("user.max_%s_namespaces=0, set in a fresh user namespace (mapped root) that nscheck runs in", t),
			Prefix: []string{"unshare", "--user", "--map-root-user", "--kill-child", "--",
				"sh", "-c", `echo 0 > ` + knob + ` && exec "$@"`, "sh"},
		})
	}
	return envs
}

// nested is unshare's user+mount+pid namespaces, with or without a fresh
// /proc and a new network namespace, as mapped root or an unprivileged user.
func nested(rootless, net, proc bool) Env {
	name, what := "nested", "in new user+mount+pid namespaces (unshare)"
	args := []string{"unshare", "--user", "--mount", "--pid", "--fork", "--kill-child"}
	if rootless {
		name += "-rootless"
		what += " as uid " + RootlessUID + " without capabilities"
		args = append(args, "--map-user="+RootlessUID, "--map-group="+RootlessUID)
	} else {
		what += " as their mapped root"
		args = append(args, "--map-root-user")
	}
	if net {
		name += "-net"
		what += ", a new network namespace (loopback down)"
		args = append(args, "--net")
	}
	if proc {
		name += "-proc"
		what += ", a fresh /proc (--mount-proc)"
		args = append(args, "--mount-proc")
	} else {
		what += ", the host's /proc (another PID namespace's)"
	}
	e := Env{Name: name, Group: "nested", What: what, Prefix: append(args, "--")}
	if rootless && !proc {
		// No capability over its mount and PID namespaces: nscheck cannot
		// mount a proc of its own, and says so once.
		e.Refusal = "/proc belongs to another PID namespace"
	}
	return e
}

// Docker lists the container environments: `docker run` options for an
// image FROM scratch holding only the static nscheck, on a daemon started
// with --bridge=none (so --network none unless the host's). cgroupns are
// the cgroup namespace modes to try ("private", "host").
func Docker() []Env {
	none := []string{"--network", "none"}
	unconfined := []string{"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"}
	envs := []Env{
		{Name: "docker-default", What: "docker run with the default profile (seccomp, AppArmor, capabilities)", Prefix: none},
		{Name: "docker-sys-admin", What: "docker run --cap-add SYS_ADMIN", Prefix: append([]string{"--cap-add", "SYS_ADMIN"}, none...)},
		{Name: "docker-unconfined", What: "docker run with seccomp and AppArmor unconfined", Prefix: append(append([]string{}, unconfined...), none...)},
		{Name: "docker-sys-admin-unconfined", What: "docker run --cap-add SYS_ADMIN, seccomp and AppArmor unconfined",
			Prefix: append(append([]string{"--cap-add", "SYS_ADMIN"}, unconfined...), none...)},
		{Name: "docker-privileged", What: "docker run --privileged", Prefix: append([]string{"--privileged"}, none...), MayNotStart: true,
			Note: "root here lacks CAP_SYS_RESOURCE, which --privileged grants: the runtime cannot create the container"},
		{Name: "docker-host-pid", What: "docker run --pid=host", Prefix: append([]string{"--pid=host"}, none...)},
		{Name: "docker-host-ipc", What: "docker run --ipc=host", Prefix: append([]string{"--ipc=host"}, none...)},
		{Name: "docker-host-uts", What: "docker run --uts=host", Prefix: append([]string{"--uts=host"}, none...)},
		{Name: "docker-host-net", What: "docker run --network=host", Prefix: []string{"--network=host"}},
		{Name: "docker-cgroupns-private", What: "docker run --cgroupns=private (the machine's cgroup hierarchy, namespaced)", Prefix: append([]string{"--cgroupns=private"}, none...)},
		{Name: "docker-cgroupns-host", What: "docker run --cgroupns=host (the machine's cgroup hierarchy as the host sees it)", Prefix: append([]string{"--cgroupns=host"}, none...)},
	}
	for i := range envs {
		envs[i].Group, envs[i].Kind = "docker", KindDocker
	}
	return envs
}

// VMs lists the QEMU guests: deb is a Debian kernel package, bare the
// bzImage alone (unpacked from it), which boots without its modules.
func VMs(deb, bare, release string) []Env {
	return []Env{
		{Name: "vm-userns-clone-0", Group: "vm", Kind: KindVM, Kernel: deb, Append: "sysctl.kernel.unprivileged_userns_clone=0",
			What: "QEMU guest, Debian " + release + " with kernel.unprivileged_userns_clone=0"},
		{Name: "vm-no-modules", Group: "vm", Kind: KindVM, Kernel: bare,
			What: "QEMU guest, Debian " + release + " booted as a bare bzImage without its modules (no veth)"},
		{Name: "vm-cgroup-hybrid", Group: "vm", Kind: KindVM, Kernel: deb, Cgroup: vm.CgroupHybrid,
			What: "QEMU guest, Debian " + release + " laid out as systemd's hybrid (each controller on a v1 hierarchy, cgroup2 at /sys/fs/cgroup/unified)"},
		{Name: "vm-cgroup-v1", Group: "vm", Kind: KindVM, Kernel: deb, Cgroup: vm.CgroupV1,
			What: "QEMU guest, Debian " + release + " laid out as a legacy cgroup v1 host (each controller on a v1 hierarchy, no cgroup2)"},
	}
}
