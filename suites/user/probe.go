package user

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/idmap"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

func init() {
	helper.Handle("user.probe", probe)
}

// probeArgs asks the helper for optional operations besides looking at its
// credentials.
type probeArgs struct {
	// SetHostname calls sethostname with the current name: harmless
	// where it succeeds, EPERM outside a UTS namespace its user
	// namespace owns.
	SetHostname bool `json:"sethostname,omitempty"`
	// CreateIn creates a file in this directory and stats it.
	CreateIn string `json:"create_in,omitempty"`
}

// probeFacts is what a helper sees of its credentials and ids.
type probeFacts struct {
	UID     int     `json:"uid"`
	GID     int     `json:"gid"`
	CapEff  uint64  `json:"cap_eff"`
	CapPrm  uint64  `json:"cap_prm"`
	UserNS  nsfs.ID `json:"userns"`
	UIDMap  string  `json:"uid_map"`
	GIDMap  string  `json:"gid_map"`
	Groups  string  `json:"setgroups"`
	RootUID uint32  `json:"root_uid"`
	RootGID uint32  `json:"root_gid"`

	Hostname    string `json:"hostname,omitempty"`
	SetHostname string `json:"sethostname,omitempty"`
	SetErrno    int    `json:"sethostname_errno,omitempty"`

	File    string `json:"file,omitempty"`
	FileUID uint32 `json:"file_uid,omitempty"`
	FileGID uint32 `json:"file_gid,omitempty"`
}

func probe(a probeArgs) (any, error) {
	f := probeFacts{UID: os.Getuid(), GID: os.Getgid()}
	var err error
	if f.CapEff, f.CapPrm, err = ownCaps(); err != nil {
		return nil, err
	}
	if f.UserNS, err = nsfs.Of(0, "user"); err != nil {
		return nil, err
	}
	for _, r := range []struct {
		path string
		to   *string
	}{{"/proc/self/uid_map", &f.UIDMap}, {"/proc/self/gid_map", &f.GIDMap}, {"/proc/self/setgroups", &f.Groups}} {
		data, err := os.ReadFile(r.path)
		if err != nil {
			return nil, helper.Fail("read "+r.path, err)
		}
		*r.to = strings.TrimSpace(string(data))
	}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return nil, helper.Fail("stat /", err)
	}
	f.RootUID, f.RootGID = st.Uid, st.Gid
	if a.SetHostname {
		if f.Hostname, err = os.Hostname(); err != nil {
			return nil, helper.Fail("gethostname", err)
		}
		f.SetHostname = "ok"
		if err := unix.Sethostname([]byte(f.Hostname)); err != nil {
			f.SetHostname, f.SetErrno = err.Error(), int(helper.Errno(err))
		}
	}
	if a.CreateIn != "" {
		f.File = filepath.Join(a.CreateIn, "created-inside")
		fd, err := unix.Open(f.File, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, helper.Fail("create "+f.File, err)
		}
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return nil, helper.Fail("fstat "+f.File, err)
		}
		f.FileUID, f.FileGID = st.Uid, st.Gid
	}
	return f, nil
}

// ownCaps reads the caller's effective and permitted capability sets.
func ownCaps() (eff, prm uint64, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, helper.Fail("capget", err)
	}
	return uint64(data[1].Effective)<<32 | uint64(data[0].Effective),
		uint64(data[1].Permitted)<<32 | uint64(data[0].Permitted), nil
}

// fullCaps is the set of every capability this kernel knows.
func fullCaps() (uint64, error) {
	last, err := readInt("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return 1<<(last+1) - 1, nil
}

func readInt(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// otherID is the outside id root of a helper's user namespace is mapped to
// when the observer may choose: not its own, so that a helper left in the
// observer's namespace (running as the observer's root) shows.
const otherID = 0x70000000

// rootMap maps root of a helper's user namespace to otherID when the
// observer can map it (root, with the id in its own maps), else to the
// observer's own ids, the only ones an unprivileged process may map.
func rootMap() (*idMap, error) {
	uid, gid, err := outsideIDs()
	if err != nil {
		return nil, err
	}
	return &idMap{inside: 0, uid: uid, gid: gid}, nil
}

func outsideIDs() (uid, gid uint32, err error) {
	uid, gid = uint32(os.Geteuid()), uint32(os.Getegid())
	if uid != 0 {
		return uid, gid, nil
	}
	um, err := idmap.Read(0, "uid")
	if err != nil {
		return 0, 0, err
	}
	gm, err := idmap.Read(0, "gid")
	if err != nil {
		return 0, 0, err
	}
	if _, ok := um.ToOutside(otherID); !ok {
		return uid, gid, nil
	}
	if _, ok := gm.ToOutside(otherID); !ok {
		return uid, gid, nil
	}
	return otherID, otherID, nil
}

// mapping maps inside to outside, one id.
func mapping(inside, outside uint32) []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: int(inside), HostID: int(outside), Size: 1}}
}

// idMap maps one id inside a helper's user namespace, the one it runs as,
// to an outside uid and gid.
type idMap struct{ inside, uid, gid uint32 }

// probed is a held probe helper and what both sides saw of it.
type probed struct {
	*helper.Process
	in     probeFacts
	status procfile.Status
	own    nsfs.ID
}

// startProbe starts a held user.probe helper in a new user namespace, with
// m written to its maps (nil: left unwritten), and reads its status from the
// host. It records the basic evidence, its keys prefixed with who, and
// expects the helper in another user namespace than the observer's.
func startProbe(t *prop.Trial, who string, a probeArgs, m *idMap) (*probed, error) {
	s := helper.Spec{Action: "user.probe", Args: a, Cloneflags: unix.CLONE_NEWUSER, Hold: true}
	if m != nil {
		s.UIDMappings, s.GIDMappings = mapping(m.inside, m.uid), mapping(m.inside, m.gid)
		if int(m.uid) != os.Geteuid() || int(m.gid) != os.Getegid() {
			// The helper keeps its creator's ids through clone, which
			// the map does not cover: it must switch to the mapped id
			// (setuid in the new namespace, where it holds CAP_SETUID).
			// Its groups are unmapped there anyway.
			s.Credential = &syscall.Credential{Uid: m.inside, Gid: m.inside, NoSetGroups: true}
		}
	}
	p, err := t.Start(s)
	if err != nil {
		return nil, err
	}
	pr := &probed{Process: p}
	if err := p.Facts(&pr.in); err != nil {
		return nil, err
	}
	if pr.status, err = procfile.ReadStatus(p.PID()); err != nil {
		return nil, err
	}
	if pr.own, err = nsfs.Of(0, "user"); err != nil {
		return nil, err
	}
	seen, err := nsfs.Of(p.PID(), "user")
	if err != nil {
		return nil, err
	}
	t.Inside(who+"uid", pr.in.UID)
	t.Inside(who+"gid", pr.in.GID)
	t.Inside(who+"uid_map", pr.in.UIDMap)
	t.Host(fmt.Sprintf("%s/proc/%d/status Uid", who, p.PID()), pr.status.UIDs)
	t.Host(fmt.Sprintf("%s/proc/%d/ns/user", who, p.PID()), seen.String())
	t.Host("own ns/user", pr.own.String())
	t.Expect(seen != pr.own && seen == pr.in.UserNS, "the helper is in the observer's user namespace %s", pr.own)
	return pr, nil
}

// errText renders the outcome of an operation for the evidence.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
