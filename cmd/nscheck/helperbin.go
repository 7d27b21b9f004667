//go:build helperbin

package main

import (
	_ "embed"

	"github.com/nscheck/nscheck/helper"
)

// The lean helper binary (internal/helperbin), built just before nscheck by
// `make build`; see helper.UseBinary.
//
//go:embed nscheck-helper.bin
var helperBinary []byte

func init() { helper.UseBinary(helperBinary) }
