package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// LoadModules loads every module file in dir with finit_module(2), letting
// the kernel decompress .ko.xz/.ko.zst/.ko.gz (MODULE_INIT_COMPRESSED_FILE,
// 6.x kernels built with MODULE_DECOMPRESS). Modules that need another one
// fail with ENOENT (unknown symbol) until it is loaded, so the files are
// retried while any of them loads. It returns one error per module that
// could not be loaded and the names of those loaded; a module already
// loaded (EEXIST) counts as loaded.
func LoadModules(dir string) (loaded []string, errs []error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.ko*"))
	if err != nil || len(files) == 0 {
		return nil, nil
	}
	return loadAll(files, loadModule)
}

// loadAll loads files with load, retrying those that fail while any other
// loads, and reports each module once.
func loadAll(files []string, load func(string) error) (loaded []string, errs []error) {
	sort.Strings(files)
	failed := map[string]error{}
	for pending := files; len(pending) > 0; {
		var again []string
		for _, f := range pending {
			if err := load(f); err != nil {
				failed[f] = err
				again = append(again, f)
			} else {
				delete(failed, f)
			}
		}
		if len(again) == len(pending) {
			break // no progress
		}
		pending = again
	}
	for _, f := range files {
		if err := failed[f]; err != nil {
			errs = append(errs, fmt.Errorf("load module %s: %w", filepath.Base(f), err))
		} else {
			loaded = append(loaded, strings.SplitN(filepath.Base(f), ".", 2)[0])
		}
	}
	return loaded, errs
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}
