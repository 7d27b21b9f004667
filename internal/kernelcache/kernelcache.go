// Package kernelcache finds the Debian kernel packages that .ci/run (and,
// for the wider matrix, .ci/kernels.sh) keeps for the tests and benchmarks
// that boot or unpack real kernels, so that they all look in one place and
// honour the same override.
package kernelcache

import (
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where .ci/run downloads the kernels.
const DefaultDir = "/var/cache/nscheck/kernels"

// Dir is the cache: NSCHECK_KERNEL_CACHE when set, else DefaultDir.
func Dir() string {
	if d := os.Getenv("NSCHECK_KERNEL_CACHE"); d != "" {
		return d
	}
	return DefaultDir
}

// Debs lists the cached cloud kernel packages whose version matches series
// ("6.1.*", "6.12.*", or "*" for all of them).
func Debs(series string) []string {
	debs, _ := filepath.Glob(filepath.Join(Dir(), "linux-image-"+series+"-cloud-amd64-unsigned_*.deb"))
	return debs
}

// MatrixDir is where .ci/kernels.sh keeps the kernels of the wider matrix,
// one directory per kernel ("slot": amd64-5.10-cloud, arm64-6.12-cloud ...).
func MatrixDir() string { return filepath.Join(Dir(), "matrix") }

// Kernel is one kernel of the matrix: its image package and the packages
// with its modules (sid splits them into linux-binary-* and
// linux-modules-*).
type Kernel struct {
	// Slot names the kernel: "<arch>-<series>-<flavour>".
	Slot string
	// Arch is the slot's architecture (amd64, arm64).
	Arch    string
	Image   string
	Modules []string
}

// Matrix lists the matrix kernels .ci/kernels.sh downloaded, by slot.
func Matrix() []Kernel {
	slots, _ := filepath.Glob(filepath.Join(MatrixDir(), "*"))
	var ks []Kernel
	for _, dir := range slots {
		k := Kernel{Slot: filepath.Base(dir)}
		k.Arch, _, _ = strings.Cut(k.Slot, "-")
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		for _, d := range debs {
			if strings.HasPrefix(filepath.Base(d), "linux-modules-") {
				k.Modules = append(k.Modules, d)
			} else {
				k.Image = d
			}
		}
		if k.Image != "" {
			ks = append(ks, k)
		}
	}
	return ks
}

// Args are the nscheck vm flags that name k.
func (k Kernel) Args() []string {
	a := []string{"--kernel", k.Image}
	for _, m := range k.Modules {
		a = append(a, "--modules", m)
	}
	return a
}
