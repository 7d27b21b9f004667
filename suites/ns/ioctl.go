package ns

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/errname"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/prop"
)

// created are the types the ioctl helper gets together with its user
// namespace: each must be owned by it.
var created = []string{"uts", "ipc", "net", "cgroup", "mnt", "pid"}

func createdFlags() uintptr {
	flags := uintptr(unix.CLONE_NEWUSER)
	for _, typ := range created {
		flags |= nsfs.Flags[typ]
	}
	return flags
}

// nsInfo is what the NS_GET_* ioctls say about one nsfs file.
type nsInfo struct {
	// Type is NS_GET_NSTYPE rendered as a CLONE_NEW* name (or the error).
	Type string `json:"type"`
	// Owner is the (st_dev, st_ino) of the user namespace NS_GET_USERNS
	// returns (for a user namespace: its parent), or the error's name.
	Owner string `json:"owner"`
}

// inspect asks the kernel about the nsfs file at path.
func inspect(path string) (nsInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nsInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var info nsInfo
	if typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE); err != nil {
		info.Type = errname.Of(err)
	} else {
		info.Type = helper.FlagNames(uintptr(typ))
	}
	owner, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		info.Owner = errname.Of(err)
		return info, nil
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		return info, fmt.Errorf("fstat NS_GET_USERNS fd: %w", err)
	}
	info.Owner = nsfs.ID{Dev: st.Dev, Ino: st.Ino}.String()
	return info, nil
}

// inspectAll inspects every type's nsfs file of pid (0: self).
func inspectAll(pid int) (map[string]nsInfo, error) {
	out := map[string]nsInfo{}
	for _, typ := range nsfs.Types {
		info, err := inspect(nsfs.Path(pid, typ))
		if err != nil {
			return nil, err
		}
		out[typ] = info
	}
	return out, nil
}

func init() {
	helper.Handle("ns.inspect", func(struct{}) (any, error) { return inspectAll(0) })
}

var _ = prop.Register(prop.Property{
	ID:    "ns.ioctl-nstype",
	Title: "NS_GET_NSTYPE on each nsfs file returns its CLONE_NEW* type; NS_GET_USERNS returns the owning user namespace (seen inside and from the host)",
	Needs: prop.NeedUserns,
	// The control withholds CLONE_NEWUTS: the helper's uts namespace is
	// then its creator's, owned by the creator's user namespace, not the
	// helper's, and NS_GET_USERNS must show it.
	Flag:     unix.CLONE_NEWUTS,
	Premises: []prop.Premise{prop.Creates(createdFlags(), "a helper with a namespace of every type")},
	Check:    ioctlNSType,
})

func ioctlNSType(t *prop.Trial) error {
	s := helper.Spec{Action: "ns.inspect", Cloneflags: createdFlags(), Hold: true}
	s.UIDMappings, s.GIDMappings = helper.RootMapping()
	p, err := t.Start(s)
	if err != nil {
		return err
	}
	inside := map[string]nsInfo{}
	if err := p.Facts(&inside); err != nil {
		return err
	}
	host, err := inspectAll(p.PID())
	if err != nil {
		return err
	}
	helperUser, err := nsfs.Of(p.PID(), "user")
	if err != nil {
		return err
	}
	ownUser, err := nsfs.Of(0, "user")
	if err != nil {
		return err
	}
	t.Inside("ioctls", inside)
	t.Host(fmt.Sprintf("ioctls on /proc/%d/ns", p.PID()), host)
	t.Host("helper ns/user", helperUser.String())
	t.Host("own ns/user", ownUser.String())
	for _, typ := range nsfs.Types {
		want := helper.FlagNames(nsfs.Flags[typ])
		t.Expect(inside[typ].Type == want && host[typ].Type == want, "NS_GET_NSTYPE of ns/%s gave %s inside and %s from the host, want %s", typ, inside[typ].Type, host[typ].Type, want)
	}
	for _, typ := range created {
		t.Expect(inside[typ].Owner == helperUser.String() && host[typ].Owner == helperUser.String(),
			"the %s namespace created with the helper's user namespace %s is owned by %s (inside) / %s (host)", typ, helperUser, inside[typ].Owner, host[typ].Owner)
	}
	// A user namespace's owner is its parent: the creator's. Inside, that
	// is outside the caller's scope, which the kernel refuses (EPERM).
	t.Expect(host["user"].Owner == ownUser.String(), "NS_GET_USERNS of the helper's user namespace is %s from the host, want its parent %s", host["user"].Owner, ownUser)
	t.Expect(errname.Is(inside["user"].Owner, unix.EPERM), "inside, NS_GET_USERNS of its own user namespace reached its parent (%s), want EPERM: outside its scope", inside["user"].Owner)
	return nil
}
