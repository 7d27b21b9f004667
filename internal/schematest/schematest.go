// Package schematest validates documents against nscheck's report schema
// (schema/nscheck-v1.schema.json) with a full JSON Schema 2020-12
// validator, formats asserted. For tests only: it is how every report the
// tests write is checked against the schema that consumers are given.
package schematest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nscheck/nscheck/schema"
)

// url names the schema inside the validator (its $id).
const url = "https://github.com/nscheck/nscheck/schema/" + schema.V1File

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.V1))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", schema.V1File, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add %s: %w", schema.V1File, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", schema.V1File, err)
	}
	return s, nil
})

// Validate checks that data is a JSON document that the nscheck/v1 schema
// accepts.
func Validate(data []byte) error {
	s, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("against %s: %w", schema.V1File, err)
	}
	return nil
}
