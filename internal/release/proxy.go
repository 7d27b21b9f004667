package release

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// ModulePath is nscheck's module.
const ModulePath = "github.com/nscheck/nscheck"

// Proxy writes a module proxy (GOPROXY=file://dir) into dir that serves the
// module at root, as it is in the working tree (the files git tracks or
// would, edits included), as release version with rel (from Files) in its
// release directory: what the public proxy serves for a tagged release.
func Proxy(dir, root, version string, rel map[string][]byte) error {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("list the module's files (git ls-files in %s): %w", root, err)
	}
	var files []modzip.File
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if _, ok := rel[strings.TrimPrefix(name, Dir+"/")]; ok {
			continue // the release's, below
		}
		info, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the working tree
		}
		files = append(files, diskFile{name, filepath.Join(root, name), info})
	}
	for name, data := range rel {
		files = append(files, dataFile{path.Join(Dir, name), data})
	}
	at := filepath.Join(dir, ModulePath, "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return fmt.Errorf("module proxy: %w", err)
	}
	var zip bytes.Buffer
	if err := modzip.Create(&zip, module.Version{Path: ModulePath, Version: version}, files); err != nil {
		return fmt.Errorf("module proxy: %w", err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return fmt.Errorf("module proxy: %w", err)
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC()})
	for name, data := range map[string][]byte{
		"list": []byte(version + "\n"), version + ".info": info,
		version + ".mod": gomod, version + ".zip": zip.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return fmt.Errorf("module proxy: %w", err)
		}
	}
	return nil
}

// GoInstall runs `go install github.com/nscheck/nscheck/cmd/nscheck@version`
// as a user does, with nscheck from the proxy in proxyDir and every other
// module from this machine's module cache (no network), into gobin, and
// returns the binary. The module cache it fills is work's, so the user's
// holds no made-up release.
func GoInstall(proxyDir, version, work, gobin string, env ...string) (string, error) {
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	cache := "file://" + filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download")
	cmd := exec.Command("go", "install", ModulePath+"/cmd/nscheck@"+version)
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"GOPROXY=file://"+proxyDir+","+cache, "GOSUMDB=off", "GOFLAGS=-modcacherw",
		"GOMODCACHE="+filepath.Join(work, "modcache"), "GOBIN="+gobin, "GOTOOLCHAIN=local", "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", ModulePath, version, err, out)
	}
	return filepath.Join(gobin, "nscheck"), nil
}

type diskFile struct {
	name, path string
	info       fs.FileInfo
}

func (f diskFile) Path() string                 { return f.name }
func (f diskFile) Lstat() (fs.FileInfo, error)  { return f.info, nil }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.path) }

type dataFile struct {
	name string
	data []byte
}

func (f dataFile) Path() string                 { return f.name }
func (f dataFile) Lstat() (fs.FileInfo, error)  { return dataInfo{f}, nil }
func (f dataFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type dataInfo struct{ f dataFile }

func (i dataInfo) Name() string       { return path.Base(i.f.name) }
func (i dataInfo) Size() int64        { return int64(len(i.f.data)) }
func (i dataInfo) Mode() fs.FileMode  { return 0o644 }
func (i dataInfo) ModTime() time.Time { return time.Time{} }
func (i dataInfo) IsDir() bool        { return false }
func (i dataInfo) Sys() any           { return nil }
