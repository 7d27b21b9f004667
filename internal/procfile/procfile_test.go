package procfile

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nscheck/nscheck/internal/fixture"
)

// The fixtures in fixtures/procfs were read on kernel 6.18:
//   - status-nobody-pidns: from the host, /proc/<pid>/status of
//     `unshare --pid --fork setpriv --reuid 65534 --regid 65534 sleep`;
//   - status-root: /proc/self/status of cat run by root (no
//     CAP_SYS_RESOURCE);
//   - stat-paren-comm: /proc/<pid>/stat of a copy of sleep named "a) (b c";
//   - stat-self: /proc/self/stat of cat;
//   - cgroup-ns-self, cgroup-ns-init: /proc/self/cgroup and /proc/1/cgroup
//     read inside `unshare -C` on a host with cgroup v1 and v2 hierarchies;
//   - mountinfo-lab: the lines of /proc/self/mountinfo for / and a tmpfs lab
//     built in a private mount namespace, with shared, slave, shared+slave,
//     unbindable mounts and a mount point with a space;
//   - mountinfo-chroot: /proc/<pid>/mountinfo of a process chrooted inside
//     that lab, whose slave's master lies outside its root (propagate_from);
//   - mountinfo-proc-subset: /proc/self/mountinfo in a private mount
//     namespace with proc mounted on /proc hidepid=invisible,subset=pid (as
//     systemd's ProtectProc=invisible and ProcSubset=pid do);
//     mountinfo-proc-subset-covered: the same with a whole proc mounted on
//     top of it;
//   - net-tcp, net-unix, net-dev: /proc/self/net/* in a new network
//     namespace with lo up, a veth pair, a TCP listener on 127.0.0.1:40001
//     and a connection to it, and unix sockets: abstract, with a NUL in the
//     abstract name, bound to a path with spaces, unbound, a socketpair;
//   - net-unix-ptrval: /proc/<pid>/net/unix of a helper early in the boot of
//     Debian's 6.12 under QEMU with a CPU without RDRAND: the kernel cannot
//     hash pointers yet and prints "(____ptrval____)" as the socket's Num.
func readFixture(tb testing.TB, name string) string { return fixture.Read(tb, "procfs", name) }

func TestParseStatusFixtures(t *testing.T) {
	for name, want := range map[string]Status{
		"status-nobody-pidns": {
			UIDs: [4]uint64{65534, 65534, 65534, 65534}, GIDs: [4]uint64{65534, 65534, 65534, 65534},
			CapEff: 0, NSpid: []uint64{31413, 1},
		},
		"status-root": {CapEff: 0x000001fffeffffff, NSpid: []uint64{31810}},
	} {
		got, err := ParseStatus(strings.NewReader(readFixture(t, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
}

func TestParseStatusRejects(t *testing.T) {
	good := "Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nCapEff:\t00000000000000ff\n"
	if s, err := ParseStatus(strings.NewReader(good)); err != nil || s.UIDs != [4]uint64{1, 2, 3, 4} || s.GIDs[3] != 8 || s.CapEff != 0xff || s.NSpid != nil {
		t.Fatalf("ParseStatus(%q) = %+v, %v", good, s, err)
	}
	for _, in := range []string{
		"",
		"Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\n", // no CapEff
		strings.Replace(good, "\t4\n", "\n", 1),
		strings.Replace(good, "\t4\n", "\t4\t5\n", 1),
		strings.Replace(good, "\t4\n", "\t4294967296\n", 1),
		strings.Replace(good, "\t4\n", "\t-4\n", 1),
		strings.Replace(good, "ff\n", "fg\n", 1),
		good + "NSpid:\t\n",
		good + "NSpid:\t1 x\n",
		good + "Uid:\t1\t2\t3\t4\n",
		good + "no colon\n",
	} {
		if s, err := ParseStatus(strings.NewReader(in)); err == nil {
			t.Errorf("ParseStatus(%q) accepted bad input: %+v", in, s)
		}
	}
}

func TestParseStatFixtures(t *testing.T) {
	for name, want := range map[string]Stat{
		"stat-paren-comm": {Comm: "a) (b c", PPID: 31814},
		"stat-self":       {Comm: "cat", PPID: 31808},
	} {
		got, err := ParseStat(strings.NewReader(readFixture(t, name)))
		if err != nil || got != want {
			t.Errorf("%s = %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, in := range []string{"", "1 cat S 2", "1 (cat S 2", "(cat) S 2", "x (cat) S 2", "1 (cat) S", "1 (cat) S x", "1 (cat) SS 2", "1 (cat) S -2", "1 )cat( S 2"} {
		if s, err := ParseStat(strings.NewReader(in)); err == nil {
			t.Errorf("ParseStat(%q) accepted bad input: %+v", in, s)
		}
	}
}

func TestParseCgroupsFixtures(t *testing.T) {
	for name, memory := range map[string]string{"cgroup-ns-self": "/", "cgroup-ns-init": "/../.."} {
		cgs, err := ParseCgroups(strings.NewReader(readFixture(t, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cgs) != 10 || cgs[0] != (Cgroup{9, "name=systemd", "/"}) || cgs[5] != (Cgroup{4, "memory", memory}) || cgs[9] != (Cgroup{0, "", "/"}) {
			t.Errorf("%s = %+v", name, cgs)
		}
	}
	colons := "0::/a:b\n"
	if cgs, err := ParseCgroups(strings.NewReader(colons)); err != nil || len(cgs) != 1 || cgs[0].Path != "/a:b" {
		t.Errorf("ParseCgroups(%q) = %+v, %v", colons, cgs, err)
	}
	for _, in := range []string{"0:/\n", "x::/\n", "-1::/\n", "+1::/\n", "0::\n", "0::a\n", "\n"} {
		if cgs, err := ParseCgroups(strings.NewReader(in)); err == nil {
			t.Errorf("ParseCgroups(%q) accepted bad input: %+v", in, cgs)
		}
	}
}

func TestParseNetFixtures(t *testing.T) {
	socks, err := ParseNetTCP(strings.NewReader(readFixture(t, "net-tcp")))
	want := []TCPSocket{{40001, TCPListen}, {40001, 1}, {40074, 1}}
	if err != nil || !slices.Equal(socks, want) {
		t.Errorf("net-tcp = %v, %v; want %v", socks, err, want)
	}
	paths, err := ParseNetUnix(strings.NewReader(readFixture(t, "net-unix")))
	wantPaths := []string{"/tmp/wt-init-fx/sock dir/s k", "@with@nul", "@nscheck-fixture"}
	if err != nil || !slices.Equal(paths, wantPaths) {
		t.Errorf("net-unix = %q, %v; want %q", paths, err, wantPaths)
	}
	paths, err = ParseNetUnix(strings.NewReader(readFixture(t, "net-unix-ptrval")))
	if wantPaths := []string{"@nscheck-d05b0e1b"}; err != nil || !slices.Equal(paths, wantPaths) {
		t.Errorf("net-unix-ptrval = %q, %v; want %q", paths, err, wantPaths)
	}
	names, err := ParseNetDev(strings.NewReader(readFixture(t, "net-dev")))
	if wantNames := []string{"lo", "nscheck1", "nscheck0"}; err != nil || !slices.Equal(names, wantNames) {
		t.Errorf("net-dev = %q, %v; want %q", names, err, wantNames)
	}
}

func TestParseNetRejects(t *testing.T) {
	tcp := strings.SplitAfter(readFixture(t, "net-tcp"), "\n")
	unix := strings.SplitAfter(readFixture(t, "net-unix"), "\n")
	dev := strings.SplitAfter(readFixture(t, "net-dev"), "\n")
	for name, c := range map[string]struct {
		parse func(string) error
		in    string
	}{
		"tcp without header":    {netTCP, tcp[1]},
		"tcp short row":         {netTCP, tcp[0] + "   0: 0100007F:9C41 00000000:0000 0A\n"},
		"tcp bad port":          {netTCP, tcp[0] + strings.Replace(tcp[1], ":9C41", ":9C4", 1)},
		"tcp bad state":         {netTCP, tcp[0] + strings.Replace(tcp[1], " 0A ", " 0X ", 1)},
		"unix without header":   {netUnix, unix[1]},
		"unix short row":        {netUnix, unix[0] + "00000000411be014: 00000003 00000000 00000000 0001 03\n"},
		"unix bad inode":        {netUnix, unix[0] + strings.Replace(unix[1], "3955884", "39558x4", 1)},
		"unix ptrval elsewhere": {netUnix, unix[0] + "00000000411be014: (____ptrval____): 00000000 00000000 0001 03 3955884\n"},
		"dev without header":    {netDev, dev[2]},
		"dev no name":           {netDev, dev[0] + dev[1] + strings.Replace(dev[2], "lo:", "  :", 1)},
		"dev few counters":      {netDev, dev[0] + dev[1] + "    lo: 1 2 3\n"},
	} {
		if err := c.parse(c.in); err == nil {
			t.Errorf("%s: accepted %q", name, c.in)
		}
	}
}

func netTCP(s string) error  { _, err := ParseNetTCP(strings.NewReader(s)); return err }
func netUnix(s string) error { _, err := ParseNetUnix(strings.NewReader(s)); return err }
func netDev(s string) error  { _, err := ParseNetDev(strings.NewReader(s)); return err }

// The readers, on this very process.
func TestReadSelf(t *testing.T) {
	st, err := ReadStatus(0)
	if err != nil || st.UIDs[1] != uint64(os.Geteuid()) || len(st.NSpid) == 0 {
		t.Errorf("ReadStatus(0) = %+v, %v; euid %d", st, err, os.Geteuid())
	}
	stat, err := ReadStat(os.Getpid())
	if err != nil || stat.PPID != os.Getppid() {
		t.Errorf("ReadStat(%d) = %+v, %v; ppid %d", os.Getpid(), stat, err, os.Getppid())
	}
	procs, err := Procs()
	if err != nil || !slices.Contains(procs, os.Getpid()) {
		t.Errorf("Procs() = %d pids, %v; lacks %d", len(procs), err, os.Getpid())
	}
	tids, err := Threads(os.Getpid())
	if err != nil || !slices.Contains(tids, os.Getpid()) {
		t.Fatalf("Threads(%d) = %v, %v", os.Getpid(), tids, err)
	}
	if ts, err := ReadThreadStatus(os.Getpid(), tids[0]); err != nil || ts.UIDs != st.UIDs {
		t.Errorf("ReadThreadStatus = %+v, %v", ts, err)
	}
	if cgs, err := ReadCgroups(0); err != nil || len(cgs) == 0 {
		t.Errorf("ReadCgroups(0) = %+v, %v", cgs, err)
	}
	if _, err := ReadNetTCP(0); err != nil {
		t.Error(err)
	}
	if _, err := ReadNetUnix(0); err != nil {
		t.Error(err)
	}
	if names, err := ReadNetDev(0); err != nil || !slices.Contains(names, "lo") {
		t.Errorf("ReadNetDev(0) = %q, %v", names, err)
	}
	if _, err := ReadStatus(1 << 30); err == nil {
		t.Error("ReadStatus of a pid that cannot exist worked")
	}
}

func TestPath(t *testing.T) {
	if got := Path(0, "net/tcp"); got != "/proc/self/net/tcp" {
		t.Errorf("Path(0) = %s", got)
	}
	if got := Path(42, "status"); got != "/proc/42/status" {
		t.Errorf("Path(42) = %s", got)
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, name := range []string{"status-nobody-pidns", "status-root"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStatus(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, id := range append(s.UIDs[:], s.GIDs[:]...) {
			if id > 1<<32-1 {
				t.Fatalf("id %d out of range from %q", id, in)
			}
		}
		if s.NSpid != nil && len(s.NSpid) == 0 {
			t.Fatalf("empty NSpid from %q", in)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	for _, name := range []string{"stat-paren-comm", "stat-self"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStat(strings.NewReader(in))
		if err != nil {
			return
		}
		// What was parsed reads back the same.
		back, err := ParseStat(strings.NewReader("1 (" + s.Comm + ") S " + strconv.Itoa(s.PPID) + " 0"))
		if err != nil || back != s {
			t.Fatalf("%+v from %q reads back as %+v, %v", s, in, back, err)
		}
	})
}

func FuzzParseCgroups(f *testing.F) {
	for _, name := range []string{"cgroup-ns-self", "cgroup-ns-init"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, in string) {
		cgs, err := ParseCgroups(strings.NewReader(in))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, c := range cgs {
			b.WriteString(strconv.Itoa(c.HierarchyID) + ":" + c.Controllers + ":" + c.Path + "\n")
		}
		back, err := ParseCgroups(strings.NewReader(b.String()))
		if err != nil || !slices.Equal(back, cgs) {
			t.Fatalf("%+v from %q reads back as %+v, %v", cgs, in, back, err)
		}
	})
}

func FuzzParseNetTCP(f *testing.F) {
	f.Add(readFixture(f, "net-tcp"))
	f.Fuzz(func(t *testing.T, in string) {
		socks, err := ParseNetTCP(strings.NewReader(in))
		if err == nil && len(socks) > strings.Count(in, "\n") {
			t.Fatalf("%d sockets from %d lines", len(socks), strings.Count(in, "\n"))
		}
	})
}

func FuzzParseNetUnix(f *testing.F) {
	f.Add(readFixture(f, "net-unix"))
	f.Add(readFixture(f, "net-unix-ptrval"))
	f.Fuzz(func(t *testing.T, in string) {
		paths, err := ParseNetUnix(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range paths {
			if p == "" || strings.Contains(p, "\n") || !strings.Contains(in, " "+p) {
				t.Fatalf("path %q is not in %q", p, in)
			}
		}
	})
}

func FuzzParseNetDev(f *testing.F) {
	f.Add(readFixture(f, "net-dev"))
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ParseNetDev(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " \t\n/:") || !strings.Contains(in, n+":") {
				t.Fatalf("name %q from %q", n, in)
			}
		}
	})
}
