package helper

import (
	"context"
	"testing"

	"github.com/nscheck/nscheck/internal/nsfs"
)

func init() {
	Handle("bench.noop", func(struct{}) (any, error) { return struct{}{}, nil })
}

// BenchmarkSpawn measures spawn -> answer -> reap of a helper cloned with
// one namespace type (and with all of them), the cost every property pays.
// Compare with `unshare <same flags> true` (scripts/bench-spawn.sh).
func BenchmarkSpawn(b *testing.B) {
	cases := []struct {
		name  string
		flags uintptr
	}{{"none", 0}}
	var all uintptr
	for _, typ := range nsfs.Types {
		cases = append(cases, struct {
			name  string
			flags uintptr
		}{typ, nsfs.Flags[typ]})
		all |= nsfs.Flags[typ]
	}
	cases = append(cases, struct {
		name  string
		flags uintptr
	}{"all", all})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := Spec{Action: "bench.noop", Cloneflags: c.flags}
			if c.flags&nsfs.Flags["user"] != 0 {
				s.UIDMappings, s.GIDMappings = RootMapping()
			}
			for b.Loop() {
				if err := Run(context.Background(), s, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
