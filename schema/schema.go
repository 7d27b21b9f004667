// Package schema holds the JSON Schema (draft 2020-12) of nscheck's report,
// nscheck/v1, for consumers that validate reports without Go (CI jobs,
// fleet collectors). The file is the reference; this package embeds it so
// that tests can validate every report they make against it.
package schema

import _ "embed"

// V1 is schema/nscheck-v1.schema.json.
//
//go:embed nscheck-v1.schema.json
var V1 []byte

// V1File is the schema's file name in this directory.
const V1File = "nscheck-v1.schema.json"
