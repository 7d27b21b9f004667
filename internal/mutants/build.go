package mutants

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultCache is where built kernels and the build tree are kept.
const DefaultCache = "/var/cache/nscheck/mutants"

// SourcePackage is the Debian package whose kernel source the mutants patch.
const SourcePackage = "linux-source-6.1"

// Builder builds the base kernel and the mutants from one source tree and
// one object directory: a mutant is applied, built and reverted, so each
// build after the first recompiles only the files its patch (and the one
// before it) touched and relinks. On two cores that is a minute or two
// per mutant, where separate object directories would cost a full build
// each. Images are cached under Cache/images by Key, so a warm cache
// builds nothing.
type Builder struct {
	// Cache holds images/ (the bzImages) and work/ (source and objects).
	Cache string
	// Tarball is the kernel source (/usr/src/linux-source-6.1.tar.xz).
	Tarball string
	// Version is the source package's version (6.1.192-3): part of the key.
	Version string
	// Config is the fragment added to tinyconfig (mutants/kernel.config).
	Config []byte
	// Jobs is make's -j.
	Jobs int
	// Log receives the build's output.
	Log io.Writer
}

// NewBuilder finds the installed source package (dpkg-query) and reads
// the config fragment.
func NewBuilder(cache, configPath string, jobs int, log io.Writer) (*Builder, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", SourcePackage).Output()
	if err != nil || len(out) == 0 {
		return nil, fmt.Errorf("find %s: not installed (apt-get install %s): %v", SourcePackage, SourcePackage, err)
	}
	cfg, err := os.ReadFile(configPath)
	if err != nil {
		return nil, fmt.Errorf("read the kernel config fragment: %w", err)
	}
	b := &Builder{Cache: cache, Tarball: "/usr/src/" + SourcePackage + ".tar.xz", Version: string(out),
		Config: cfg, Jobs: jobs, Log: log}
	if _, err := os.Stat(b.Tarball); err != nil {
		return nil, fmt.Errorf("find the kernel source: %w", err)
	}
	return b, nil
}

// Key identifies a kernel image: the source package and version, the
// config fragment and the patch (nil for the base).
func (b *Builder) Key(patch []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", SourcePackage, b.Version)
	fmt.Fprintf(h, "config %d\n", len(b.Config))
	h.Write(b.Config)
	fmt.Fprintf(h, "patch %d\n", len(patch))
	h.Write(patch)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ImagePath is where the image of name with that patch is cached.
func (b *Builder) ImagePath(name string, patch []byte) string {
	return filepath.Join(b.Cache, "images", name+"-"+b.Key(patch)+".bzImage")
}

func (b *Builder) work() string   { return filepath.Join(b.Cache, "work") }
func (b *Builder) src() string    { return filepath.Join(b.work(), SourcePackage) }
func (b *Builder) obj() string    { return filepath.Join(b.work(), "kbuild") }
func (b *Builder) marker() string { return filepath.Join(b.work(), "applied.patch") }

// Image returns the cached image of a kernel, building it first when the
// cache lacks it; built says whether it did. patchPath is "" for the base.
func (b *Builder) Image(ctx context.Context, name, patchPath string) (path string, built bool, err error) {
	var patch []byte
	if patchPath != "" {
		if patch, err = os.ReadFile(patchPath); err != nil {
			return "", false, fmt.Errorf("build %s: %w", name, err)
		}
	}
	path = b.ImagePath(name, patch)
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, false, nil
	}
	if err := b.prepare(ctx); err != nil {
		return "", false, fmt.Errorf("build %s: %w", name, err)
	}
	if patch != nil {
		// The marker is written first: a build interrupted while the tree
		// is patched is reverted by the next prepare.
		if err := os.WriteFile(b.marker(), patch, 0o644); err != nil {
			return "", false, fmt.Errorf("build %s: %w", name, err)
		}
		if err := b.patch(ctx, b.marker(), false); err != nil {
			os.Remove(b.marker())
			return "", false, fmt.Errorf("build %s: apply %s: %w", name, patchPath, err)
		}
	}
	berr := b.make(ctx, "bzImage")
	if berr == nil {
		berr = copyFile(filepath.Join(b.obj(), "arch", "x86", "boot", "bzImage"), path)
	}
	if patch != nil {
		if err := b.revert(ctx); err != nil && berr == nil {
			berr = err
		}
	}
	if berr != nil {
		return "", false, fmt.Errorf("build %s: %w", name, berr)
	}
	return path, true, nil
}

// prepare makes the tree ready: the source of this version unpacked and
// unpatched, the object directory configured from tinyconfig and the
// fragment (again only when the fragment changed).
func (b *Builder) prepare(ctx context.Context) error {
	stamp := filepath.Join(b.work(), "version")
	if have, _ := os.ReadFile(stamp); string(have) != b.Version {
		fmt.Fprintf(b.Log, "mutants: unpacking %s (%s)\n", b.Tarball, b.Version)
		if err := os.RemoveAll(b.work()); err != nil {
			return err
		}
		if err := os.MkdirAll(b.work(), 0o755); err != nil {
			return err
		}
		if err := b.run(ctx, b.work(), "tar", "-xf", b.Tarball); err != nil {
			return fmt.Errorf("unpack the source: %w", err)
		}
		if err := os.WriteFile(stamp, []byte(b.Version), 0o644); err != nil {
			return err
		}
	}
	if _, err := os.Stat(b.marker()); err == nil {
		if err := b.revert(ctx); err != nil {
			return fmt.Errorf("revert an interrupted mutant: %w", err)
		}
	}
	if err := os.MkdirAll(b.obj(), 0o755); err != nil {
		return err
	}
	cfgStamp := filepath.Join(b.obj(), ".nscheck-fragment")
	if have, err := os.ReadFile(cfgStamp); err == nil && bytes.Equal(have, b.Config) {
		return nil
	}
	if err := b.make(ctx, "tinyconfig"); err != nil {
		return err
	}
	dotConfig := filepath.Join(b.obj(), ".config")
	f, err := os.OpenFile(dotConfig, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(append([]byte("\n"), b.Config...))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write .config: %w", werr)
	}
	if err := b.make(ctx, "olddefconfig"); err != nil {
		return err
	}
	got, err := os.ReadFile(dotConfig)
	if err != nil {
		return err
	}
	if lost := LostOptions(b.Config, got); len(lost) > 0 {
		return fmt.Errorf("the config fragment did not survive olddefconfig (a dependency is off): %s", strings.Join(lost, "; "))
	}
	return os.WriteFile(cfgStamp, b.Config, 0o644)
}

// LostOptions lists the fragment's settings that the resulting .config
// does not carry: an option whose dependencies are off is dropped by
// olddefconfig without a word.
func LostOptions(fragment, config []byte) []string {
	have := map[string]string{}
	for _, l := range strings.Split(string(config), "\n") {
		if k, v, ok := parseOption(l); ok {
			have[k] = v
		}
	}
	var lost []string
	for _, l := range strings.Split(string(fragment), "\n") {
		k, v, ok := parseOption(l)
		if !ok {
			continue
		}
		if got := have[k]; got != v && !(v == "n" && got == "") {
			if got == "" {
				got = "unset"
			}
			lost = append(lost, fmt.Sprintf("%s=%s is %s", k, v, got))
		}
	}
	return lost
}

// parseOption reads "CONFIG_X=v" and "# CONFIG_X is not set" (as v "n").
func parseOption(l string) (key, val string, ok bool) {
	l = strings.TrimSpace(l)
	if rest, found := strings.CutPrefix(l, "# "); found {
		if k, f := strings.CutSuffix(rest, " is not set"); f && strings.HasPrefix(k, "CONFIG_") {
			return k, "n", true
		}
		return "", "", false
	}
	if !strings.HasPrefix(l, "CONFIG_") {
		return "", "", false
	}
	k, v, found := strings.Cut(l, "=")
	return k, v, found
}

func (b *Builder) revert(ctx context.Context) error {
	if err := b.patch(ctx, b.marker(), true); err != nil {
		return fmt.Errorf("revert: %w (the tree %s is left patched: remove %s to start over)", err, b.src(), b.work())
	}
	return os.Remove(b.marker())
}

func (b *Builder) patch(ctx context.Context, file string, reverse bool) error {
	args := []string{"-p1", "--batch", "--forward", "--silent", "-d", b.src(), "-i", file}
	if reverse {
		args = append(args, "--reverse")
	}
	return b.run(ctx, "", "patch", args...)
}

func (b *Builder) make(ctx context.Context, target string) error {
	// Kbuild records the object directory's absolute path in its command
	// files: the same directory named another way rebuilds everything.
	obj := b.obj()
	if real, err := filepath.EvalSymlinks(obj); err == nil {
		obj = real
	}
	return b.run(ctx, "", "make", "-C", b.src(), "O="+obj, fmt.Sprintf("-j%d", max(1, b.Jobs)), target)
}

func (b *Builder) run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var tail tailBuffer
	w := io.MultiWriter(b.Log, &tail)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last few KiB written to it: the end of a failed
// build's output goes into its error.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	t.b = append(t.b, p...)
	if len(t.b) > keep {
		t.b = t.b[len(t.b)-keep:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// copyFile copies src to dst through a temporary file and a rename, so the
// cache never holds a partial image.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".image-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache the image: %w", err)
	}
	return nil
}
