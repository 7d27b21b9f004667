// Package kernelcache finds the Debian kernel packages that .ci/run keeps
// for the tests and benchmarks that boot or unpack real kernels, so that
// they all look in one place and honour the same override.
package kernelcache

import (
	"os"
	"path/filepath"
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
