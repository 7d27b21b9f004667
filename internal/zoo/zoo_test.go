package zoo

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsdeny"
)

// TestMain is also the seccomp environments' launcher: with SeccompEnvVar
// set, the test binary installs the filter and becomes its arguments.
func TestMain(m *testing.M) {
	if e := os.Getenv(SeccompEnvVar); e != "" {
		os.Exit(launch(e, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func launch(errno string, argv []string) int {
	codes := map[string]unix.Errno{"EPERM": unix.EPERM, "ENOSYS": unix.ENOSYS}
	code, ok := codes[errno]
	if !ok || len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "zoo launcher: %s=%q (EPERM or ENOSYS) and a command to run\n", SeccompEnvVar, errno)
		return 3
	}
	if err := nsdeny.Install(code); err != nil {
		fmt.Fprintln(os.Stderr, "zoo launcher:", err)
		return 3
	}
	env := slicesWithout(os.Environ(), SeccompEnvVar+"=")
	err := syscall.Exec(argv[0], argv, env)
	fmt.Fprintf(os.Stderr, "zoo launcher: exec %s: %v\n", argv[0], err)
	return 3
}

func slicesWithout(env []string, prefix string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// skipParts are the parts of the zoo NSCHECK_ZOO_SKIP names (comma
// separated: docker, vm), for a developer's machine without them. CI sets
// none: every environment runs.
func skipParts() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(os.Getenv("NSCHECK_ZOO_SKIP"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}

// wanted reports whether NSCHECK_ZOO_ONLY can select a part's environments
// (their names begin with it), so that docker and the kernels are only
// prepared when used.
func wanted(part string) bool {
	only := os.Getenv("NSCHECK_ZOO_ONLY")
	return only == "" || strings.Contains(only, part)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
	}
	t.Fatal("no go.mod above the test's directory")
	return ""
}

func sh(t *testing.T, dir string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestZoo runs nscheck in every environment and asserts the invariant in
// each (see the package doc). It writes bin/zoo/table.md and every
// environment's raw output beside it.
func TestZoo(t *testing.T) {
	if os.Getenv("NSCHECK_ZOO") != "1" {
		t.Skip("the environment zoo runs with NSCHECK_ZOO=1, as root (make zoo)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("NSCHECK_ZOO=1 needs root: the zoo enters namespaces, docker and QEMU")
	}
	root := repoRoot(t)
	skip := skipParts()
	r := &Runner{Nscheck: os.Getenv("NSCHECK_ZOO_BIN"), Out: filepath.Join(root, "bin", "zoo"), Timeout: 3 * time.Minute}
	if r.Nscheck == "" {
		sh(t, root, "make", "-s", "build")
		r.Nscheck = filepath.Join(root, "bin", "nscheck")
	} // else another tree's static build, to try its fixes in the zoo
	if err := os.RemoveAll(r.Out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	launcher, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	caps := strings.Fields(sh(t, root, "setpriv", "--list-caps"))
	if len(caps) == 0 {
		t.Fatal("setpriv --list-caps named no capability")
	}
	var envs []Env
	var absent []*Outcome // environments this machine lacks the means for
	if !skip["vm"] && wanted("vm") {
		vms, why := vmEnvs(t)
		switch {
		case why != "" && os.Getenv("NSCHECK_REQUIRE_VM") != "":
			t.Fatalf("%s (NSCHECK_REQUIRE_VM is set)", why)
		case why != "":
			for _, e := range VMs("", "", "") {
				e.MayNotStart = true
				absent = append(absent, &Outcome{Env: e, NotStarted: why})
			}
		}
		envs = append(envs, vms...)
	}
	if !skip["docker"] && wanted("docker") {
		why := dockerAbsent()
		switch {
		case why != "" && os.Getenv("NSCHECK_REQUIRE_DOCKER") != "":
			t.Fatalf("%s (NSCHECK_REQUIRE_DOCKER is set)", why)
		case why != "":
			for _, e := range Docker() {
				e.MayNotStart = true
				absent = append(absent, &Outcome{Env: e, NotStarted: why})
			}
		default:
			startDocker(t, root, r)
			envs = append(envs, Docker()...)
		}
	}
	envs = append(envs, Host(caps, launcher)...)
	if only := os.Getenv("NSCHECK_ZOO_ONLY"); only != "" {
		// a developer's shortcut: the environments whose name matches
		re := regexp.MustCompile(only)
		envs = slices.DeleteFunc(envs, func(e Env) bool { return !re.MatchString(e.Name) })
	}

	jobs := 3
	if n, err := strconv.Atoi(os.Getenv("NSCHECK_ZOO_JOBS")); err == nil && n > 0 {
		jobs = n
	}
	outs := make([]*Outcome, len(envs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	start := time.Now()
	for i, e := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if e.Kind == KindVM {
				vr := *r
				vr.Timeout = 8 * time.Minute
				outs[i] = vr.Run(context.Background(), e)
				return
			}
			outs[i] = r.Run(context.Background(), e)
		}()
	}
	wg.Wait()
	outs = append(outs, absent...)
	t.Logf("%d environments in %s (%d at a time)", len(envs), time.Since(start).Round(time.Second), jobs)

	// The table lists the environments group by group, in the order of
	// the package's lists (the VMs ran first only to overlap the rest).
	order := map[string]int{"root": 0, "caps": 1, "nested": 2, "seccomp": 3, "limits": 4, "docker": 5, "vm": 6}
	sort.SliceStable(outs, func(i, j int) bool { return order[outs[i].Env.Group] < order[outs[j].Env.Group] })
	header := fmt.Sprintf("nscheck %s on Linux %s (%s), %s UTC.", gitDescribe(root), kernelRelease(), cgroupView(), time.Now().UTC().Format("2006-01-02 15:04"))
	table := Table(header, outs)
	if err := os.WriteFile(filepath.Join(r.Out, "table.md"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("table: %s", filepath.Join(r.Out, "table.md"))
	for _, o := range outs {
		t.Run(o.Env.Name, func(t *testing.T) {
			if o.NotStarted != "" {
				t.Skipf("cannot run here: %s", o.NotStarted)
			}
			for _, v := range o.Violations() {
				t.Error(v)
			}
			if t.Failed() && o.Stderr != "" {
				t.Logf("stderr (tail): %s", o.Stderr)
			}
		})
	}
}

// TestWriteReadme puts bin/zoo/table.md into README.md's "Tested
// environments" section (make zoo-readme).
func TestWriteReadme(t *testing.T) {
	if os.Getenv("NSCHECK_ZOO_README") != "1" {
		t.Skip("rewrites README.md from bin/zoo/table.md with NSCHECK_ZOO_README=1 (make zoo-readme)")
	}
	root := repoRoot(t)
	table, err := os.ReadFile(filepath.Join(root, "bin", "zoo", "table.md"))
	if err != nil {
		t.Fatalf("%v (run make zoo first)", err)
	}
	path := filepath.Join(root, "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	intro := "The environment zoo (`make zoo`, part of `make test`; internal/zoo) runs `nscheck env` and `nscheck run` " +
		"in each of these and fails on any \"isolation broken\", harness error, skip without a cause, " +
		"or a skip that `env` did not predict. Its last run on the CI machine:\n\n"
	out := SpliceReadme(string(readme), intro+ReadmeSection(string(table)))
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerAbsent says why this machine cannot run the Docker environments
// (no dockerd or client: `bash .ci/docker.sh install` gives both), or "".
func dockerAbsent() string {
	_, errd := exec.LookPath("dockerd")
	if _, err := os.Stat("/usr/sbin/dockerd"); err == nil {
		errd = nil
	}
	_, errc := exec.LookPath("docker")
	if errd != nil || errc != nil {
		return "Docker is not installed here (bash .ci/docker.sh install gives Debian's docker.io)"
	}
	return ""
}

// startDocker starts the zoo's dockerd (.ci/docker.sh) and imports the
// image FROM scratch holding only the static nscheck; both are undone at
// the end of the test.
func startDocker(t *testing.T, root string, r *Runner) {
	t.Helper()
	script := filepath.Join(root, ".ci", "docker.sh")
	r.Docker = "/usr/bin/docker" // Debian's client first, as docker.sh does
	if _, err := os.Stat(r.Docker); err != nil {
		if r.Docker, err = exec.LookPath("docker"); err != nil {
			t.Fatalf("no docker client: %v (bash .ci/docker.sh install)", err)
		}
	}
	r.DockerHost = sh(t, root, "bash", script, "start")
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop").CombinedOutput(); err != nil {
			t.Errorf("docker.sh stop: %v\n%s", err, out)
		}
	})
	bin, err := os.ReadFile(r.Nscheck)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "nscheck", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	r.Image = fmt.Sprintf("nscheck-zoo:%d", os.Getpid())
	cmd := exec.Command(r.Docker, "-H", r.DockerHost, "import", "--change", `ENTRYPOINT ["/nscheck"]`, "-", r.Image)
	cmd.Stdin = &layer
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// before docker.sh stop (cleanups run last first)
		if out, err := exec.Command(r.Docker, "-H", r.DockerHost, "rmi", "-f", r.Image).CombinedOutput(); err != nil {
			t.Errorf("docker rmi %s: %v\n%s", r.Image, err, out)
		}
	})
}

// vmEnvs finds the newest cached 6.1 cloud kernel (.ci/run fills the
// cache) and unpacks its bzImage alone for the guest without modules. Without
// QEMU or the kernel it says why instead: the VMs then skip, as the other VM
// tests do, unless NSCHECK_REQUIRE_VM is set (.ci/run sets it).
func vmEnvs(t *testing.T) ([]Env, string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return nil, "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
	}
	debs, _ := filepath.Glob("/var/cache/nscheck/kernels/linux-image-6.1.*-cloud-amd64-unsigned_*.deb")
	if len(debs) == 0 {
		return nil, "no /var/cache/nscheck/kernels/linux-image-6.1.*-cloud-amd64-unsigned_*.deb: .ci/run downloads it " +
			"(or: apt-get download 'linux-image-6.1.*-cloud-amd64-unsigned')"
	}
	sort.Strings(debs)
	deb := debs[len(debs)-1]
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './boot/vmlinuz-*'`, "sh", deb, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack the bzImage of %s: %v\n%s", deb, err, out)
	}
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		t.Fatalf("%s: %d boot/vmlinuz-* in the package", deb, len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	return VMs(deb, images[0], release), ""
}

func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// cgroupView says which cgroup hierarchy the machine gives containers.
func cgroupView() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "cgroup v2"
	}
	return "cgroup v1"
}
