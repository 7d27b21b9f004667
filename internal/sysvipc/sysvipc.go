// Package sysvipc reads the SysV IPC objects of the caller's IPC namespace
// from /proc/sysvipc/{msg,shm,sem}, and creates and removes them by key
// (x/sys/unix wraps shm but not msgget or semget).
//
// The files list the objects of the IPC namespace of the process that reads
// them, not of the proc mount, which is what makes them host-side evidence.
package sysvipc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Object is one row of a /proc/sysvipc file.
type Object struct {
	Key int32 `json:"key"`
	ID  int   `json:"id"`
	// Fields holds every column by its header name.
	Fields map[string]string `json:"fields,omitempty"`
}

// Kinds are the file names under /proc/sysvipc.
var Kinds = []string{"msg", "shm", "sem"}

// Read parses /proc/sysvipc/<kind> ("msg", "shm" or "sem").
func Read(kind string) ([]Object, error) {
	data, err := os.ReadFile("/proc/sysvipc/" + kind)
	if err != nil {
		return nil, fmt.Errorf("read /proc/sysvipc/%s: %w", kind, err)
	}
	objs, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse /proc/sysvipc/%s: %w", kind, err)
	}
	return objs, nil
}

// Parse parses the text of a /proc/sysvipc file: a header naming the
// columns, the first two of which are the key and the id, then one row per
// object.
func Parse(r io.Reader) ([]Object, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("empty input: no header")
	}
	header := strings.Fields(sc.Text())
	if len(header) < 2 || header[0] != "key" || !strings.HasSuffix(header[1], "id") {
		return nil, fmt.Errorf("header %q does not start with key and an id column", sc.Text())
	}
	var out []Object
	for line := 2; sc.Scan(); line++ {
		cols := strings.Fields(sc.Text())
		if len(cols) == 0 {
			continue
		}
		if len(cols) != len(header) {
			return nil, fmt.Errorf("line %d: %d columns, header has %d", line, len(cols), len(header))
		}
		key, err := strconv.ParseInt(cols[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: key: %w", line, err)
		}
		id, err := strconv.Atoi(cols[1])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("line %d: bad id %q", line, cols[1])
		}
		fields := make(map[string]string, len(header))
		for i, h := range header {
			fields[h] = cols[i]
		}
		out = append(out, Object{Key: int32(key), ID: id, Fields: fields})
	}
	return out, sc.Err()
}

// HasKey reports whether objs holds an object with key.
func HasKey(objs []Object, key int32) bool {
	for _, o := range objs {
		if o.Key == key {
			return true
		}
	}
	return false
}
