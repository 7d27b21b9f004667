package mnt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/nsfs"
	"github.com/nscheck/nscheck/internal/procfile"
	"github.com/nscheck/nscheck/prop"
)

// A lab is a disposable host for the properties in which "the host" mounts
// something or propagation between peers is shown: a helper in a mount
// namespace of its own (plus a user namespace when rootless), all of whose
// mounts are private, with its own tmpfs at a fresh directory to play in.
// The lab starts the helper under test ("inner") from there, acts as the
// host, and reports what both saw. It dies when it is released, and its
// mounts with it; the real host's mount table never changes.
//
// The lab has its own mount namespace in the control too. What a control
// withholds is the property's own ingredient (the inner helper's mount or
// user namespace, private or shared or slave propagation, MS_UNBINDABLE),
// chosen per scenario from labArgs.Isolated.

// labArgs is what the check hands the lab.
type labArgs struct {
	// Dir is a fresh directory on the host: the lab mounts its tmpfs over
	// it, in the lab's mount namespace only.
	Dir       string  `json:"dir"`
	Forbidden nsfs.ID `json:"forbidden"`
	// Isolated is false in the control.
	Isolated bool `json:"isolated"`
}

// labFacts is what a lab reports. Paths are named relative to Dir.
type labFacts struct {
	Inner *innerFacts `json:"inner,omitempty"`
	// Sees: mounted at the name, in the lab's own mountinfo.
	Sees map[string]bool `json:"sees"`
	// SeesBefore: the same, read before the lab acted (a gate was open).
	SeesBefore map[string]bool `json:"sees before acting,omitempty"`
	// InnerTable: mounted at the name in /proc/<inner>/mountinfo, read by
	// the lab while the inner helper was held.
	InnerTable map[string]bool `json:"inner table,omitempty"`
	// Propagation of Dir (".") and the mounts below it, in the lab.
	Propagation map[string]string `json:"propagation"`
	// Options are the per-mount options of a mount, in the lab.
	Options map[string]string `json:"options,omitempty"`
	// Bind is the outcome of a bind mount the lab tried itself.
	Bind string `json:"bind,omitempty"`
}

// lab is the lab's side while a scenario runs.
type lab struct {
	labArgs
	ctx   context.Context
	facts labFacts
}

// handleLab registers a lab scenario as a helper action: open the lab, run
// the scenario, report.
func handleLab(name string, scenario func(l *lab) error) {
	helper.Handle(name, func(a labArgs) (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), helper.DefaultTimeout)
		defer cancel()
		l := &lab{labArgs: a, ctx: ctx, facts: labFacts{Sees: map[string]bool{}, Propagation: map[string]string{}}}
		if err := enter(a.Forbidden, ""); err != nil {
			return nil, err
		}
		if err := unix.Mount("tmpfs", a.Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
			return nil, helper.Fail("mount tmpfs "+a.Dir, err)
		}
		if err := scenario(l); err != nil {
			return nil, err
		}
		return l.facts, nil
	})
}

func (l *lab) path(name string) string {
	if name == "" {
		return l.Dir
	}
	return filepath.Join(l.Dir, name)
}

// mkdir makes directories in the lab.
func (l *lab) mkdir(names ...string) error {
	for _, n := range names {
		if err := os.Mkdir(l.path(n), 0o755); err != nil {
			return fmt.Errorf("mkdir in the lab: %w", err)
		}
	}
	return nil
}

// mount mounts a fresh tmpfs at name with flags (MS_RDONLY ...).
func (l *lab) mount(name string, flags uintptr) error {
	if err := l.mkdir(name); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", l.path(name), "tmpfs", flags, "size=1m"); err != nil {
		return helper.Fail("mount tmpfs "+l.path(name), err)
	}
	return nil
}

// propagate sets the propagation of the mount at name (MS_SHARED ...).
func (l *lab) propagate(name string, flag uintptr) error {
	if err := unix.Mount("", l.path(name), "", flag, ""); err != nil {
		return helper.Fail("change propagation of "+l.path(name), err)
	}
	return nil
}

// innerFlags is flags for the inner helper in the real run, and without
// withheld in the control.
func (l *lab) innerFlags(flags, withheld uintptr) uintptr {
	if l.Isolated {
		return flags
	}
	return flags &^ withheld
}

// start starts the inner helper, held, with a user namespace mapping the
// lab's root to itself when flags ask for one.
func (l *lab) start(a innerArgs, flags uintptr) (*helper.Process, error) {
	a.Dir, a.Forbidden = l.Dir, l.Forbidden
	s := helper.Spec{Action: "mnt.inner", Args: a, Cloneflags: flags, Hold: true}
	if flags&unix.CLONE_NEWUSER != 0 {
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	return helper.Start(l.ctx, s)
}

// startGated starts the inner helper, held, and returns once it has
// passed its setup and waits at its gate (its handshake): the lab acts,
// then lets it look with proceed.
func (l *lab) startGated(a innerArgs, flags uintptr) (*helper.Process, error) {
	a.Dir, a.Forbidden, a.Gate = l.Dir, l.Forbidden, true
	s := helper.Spec{Action: "mnt.inner", Args: a, Cloneflags: flags, Hold: true, Handshake: true}
	if flags&unix.CLONE_NEWUSER != 0 {
		s.UIDMappings, s.GIDMappings = helper.RootMapping()
	}
	p, err := helper.Spawn(l.ctx, s)
	if err != nil {
		return nil, err
	}
	var at struct{}
	if err := p.Handshake(&at); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// finish collects what the inner helper p saw and what the lab sees at
// names, then releases p.
func (l *lab) finish(p *helper.Process, names ...string) error {
	defer p.Release()
	var in innerFacts
	if err := p.Facts(&in); err != nil {
		return err
	}
	l.facts.Inner = &in
	l.facts.InnerTable = map[string]bool{}
	for _, n := range names {
		seen, err := mountedAt(p.PID(), l.path(n))
		if err != nil {
			return err
		}
		l.facts.InnerTable[n] = seen
	}
	if err := l.look(l.facts.Sees, names...); err != nil {
		return err
	}
	return p.Release()
}

// look records in seen whether the lab has a mount at each name, and the
// propagation of each of them and of the lab itself.
func (l *lab) look(seen map[string]bool, names ...string) error {
	ms, err := mounts(0)
	if err != nil {
		return err
	}
	for _, n := range append([]string{""}, names...) {
		m := find(ms, l.path(n))
		if n != "" {
			seen[n] = m != nil
		}
		if n == "" {
			n = "."
		}
		l.facts.Propagation[n] = propagation(m)
	}
	return nil
}

// innerArgs drives the inner helper, in this order: enter its namespace
// (private, but for Keep), make Slave a slave, Mount a tmpfs, Umount,
// try to Remount a read-only nosuid mount, pass the Gate, Look.
type innerArgs struct {
	Dir       string   `json:"dir"`
	Forbidden nsfs.ID  `json:"forbidden"`
	Keep      bool     `json:"keep,omitempty"`
	Slave     bool     `json:"slave,omitempty"`
	Mount     string   `json:"mount,omitempty"`
	Umount    string   `json:"umount,omitempty"`
	Remount   string   `json:"remount,omitempty"`
	Gate      bool     `json:"gate,omitempty"`
	Look      []string `json:"look,omitempty"`
	// Steps run after Remount, before the Gate (userns.go).
	Steps []step `json:"steps,omitempty"`
}

// innerFacts is what the inner helper saw: the outcome of each step
// (errno names) and whether each looked-up name was mounted.
type innerFacts struct {
	Umount      string          `json:"umount,omitempty"`
	RemountRW   string          `json:"remount rw,omitempty"`
	RemountSUID string          `json:"remount suid,omitempty"`
	Sees        map[string]bool `json:"sees"`
	// Steps are the outcomes of the further steps of an inner helper of
	// its own (userns.go), by name.
	Steps map[string]string `json:"steps,omitempty"`
}

func init() {
	helper.Handle("mnt.inner", runInner)
}

func runInner(a innerArgs) (any, error) {
	path := func(n string) string { return filepath.Join(a.Dir, n) }
	keep := ""
	if a.Keep {
		keep = a.Dir
	}
	if err := enter(a.Forbidden, keep); err != nil {
		return nil, err
	}
	if a.Slave {
		if err := unix.Mount("", a.Dir, "", unix.MS_SLAVE, ""); err != nil {
			return nil, helper.Fail("mount --make-slave "+a.Dir, err)
		}
	}
	if a.Mount != "" {
		if err := unix.Mount("tmpfs", path(a.Mount), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m"); err != nil {
			return nil, helper.Fail("mount tmpfs "+path(a.Mount), err)
		}
	}
	f := innerFacts{Sees: map[string]bool{}}
	if a.Umount != "" {
		f.Umount = errString(unix.Unmount(path(a.Umount), 0))
	}
	if a.Remount != "" {
		// Per-mount flags of a bind remount: what locking protects.
		const keepFlags = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NODEV | unix.MS_NOEXEC
		f.RemountRW = errString(unix.Mount("", path(a.Remount), "", keepFlags|unix.MS_NOSUID, ""))
		f.RemountSUID = errString(unix.Mount("", path(a.Remount), "", keepFlags|unix.MS_RDONLY, ""))
	}
	if len(a.Steps) > 0 {
		steps, err := runSteps(a.Dir, a.Steps)
		if err != nil {
			return nil, err
		}
		f.Steps = steps
	}
	if a.Gate {
		// At the gate: tell the lab, and look only when it says so.
		if err := helper.SendHandshake(struct{}{}); err != nil {
			return nil, err
		}
		if err := helper.AwaitGo(); err != nil {
			return nil, err
		}
	}
	ms, err := mounts(0)
	if err != nil {
		return nil, err
	}
	for _, n := range a.Look {
		f.Sees[n] = find(ms, path(n)) != nil
	}
	return f, nil
}

// labRun is what the check saw of a lab: its report, and the observer's own
// reading of /proc/<lab>/mountinfo for the names the lab reported.
type labRun struct {
	labFacts
	// HostSees: mounted at the name in /proc/<lab>/mountinfo.
	HostSees map[string]bool
}

// labProperty is a property whose check runs scenario in a lab and judges
// the outcome with expect.
func labProperty(id, title string, needs prop.Need, scenario string, expect func(t *prop.Trial, r *labRun)) prop.Property {
	return prop.Property{
		ID:    id,
		Title: title,
		Needs: needs,
		// Nominal: the sandbox of the control has its own mount namespace;
		// what the control withholds is the scenario's (see labArgs).
		Flag:     unix.CLONE_NEWNS,
		Premises: []prop.Premise{prop.Scratch},
		Check: func(t *prop.Trial) error {
			r, err := runLab(t, scenario)
			if err != nil {
				return err
			}
			expect(t, r)
			return nil
		},
	}
}

// runLab starts the lab for scenario, held, and records the evidence of
// both sides.
func runLab(t *prop.Trial, scenario string) (*labRun, error) {
	dir, err := t.ScratchDir("nscheck-lab-")
	if err != nil {
		return nil, err
	}
	a := labArgs{Dir: dir, Isolated: t.Isolated}
	if a.Forbidden, err = t.Forbidden("mnt"); err != nil {
		return nil, err
	}
	s := helper.Spec{Action: scenario, Args: a, Cloneflags: unix.CLONE_NEWNS, Hold: true}
	t.Flags(&s)
	s.Cloneflags |= unix.CLONE_NEWNS // the lab keeps its own, even in the control
	p, err := helper.Start(t.Context(), s)
	if p != nil {
		t.Defer(func() { _ = p.Release() })
	}
	if err != nil {
		return nil, err
	}
	r := &labRun{HostSees: map[string]bool{}}
	if err := p.Facts(&r.labFacts); err != nil {
		return nil, err
	}
	for n := range r.Sees {
		if r.HostSees[n], err = mountedAt(p.PID(), filepath.Join(dir, n)); err != nil {
			return nil, err
		}
	}
	own, err := mountedAt(0, dir)
	if err != nil {
		return nil, err
	}
	if r.Inner != nil {
		record(t.Inside, "", r.Inner)
	}
	lf := r.labFacts
	lf.Inner = nil
	record(t.Host, "lab: ", lf)
	record(t.Host, fmt.Sprintf("/proc/%d/mountinfo (the lab) ", p.PID()), map[string]any{"sees": r.HostSees})
	t.Host("lab dir", dir)
	t.Host("lab dir mounted in /proc/self/mountinfo", own)
	t.Expect(!own, "the lab's tmpfs at %s is in the real host's mount table", dir)
	return r, nil
}

// record adds every top-level field of facts (as JSON names it) as evidence.
func record(add func(string, any), prefix string, facts any) {
	b, err := json.Marshal(facts)
	if err != nil {
		add(prefix+"unrecordable", err.Error())
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		add(prefix+"unrecordable", err.Error())
		return
	}
	for k, v := range m {
		add(prefix+k, v)
	}
}

// proceed lets the gated inner helper p look, then collects as finish does.
func (l *lab) proceed(p *helper.Process, names ...string) error {
	p.Go()
	if err := p.Reply(nil); err != nil {
		p.Close()
		return err
	}
	return l.finish(p, names...)
}

// options records the per-mount options of the mount at name in the lab.
func (l *lab) options(name string) error {
	m, err := mountAt(0, l.path(name))
	if err != nil || m == nil {
		return fmt.Errorf("the lab's mount at %s is gone (%v)", name, err)
	}
	keys := []string{"ro", "rw", "nosuid", "nodev", "noexec"}
	var set []string
	for _, k := range keys {
		if procfile.HasOption(m, k) {
			set = append(set, k)
		}
	}
	l.facts.Options = map[string]string{name: strings.Join(set, ",")}
	return nil
}
