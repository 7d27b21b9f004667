package helper

import (
	"bytes"
	"strings"
	"sync"
)

// StderrCap is how much of a helper's stderr is kept for error messages.
const StderrCap = 4096

// CappedBuffer keeps the first n bytes written to it and drops the rest; it
// is a helper's stderr, read (by Tail) while the copy may still be writing.
type CappedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int
}

// NewCappedBuffer keeps up to n bytes.
func NewCappedBuffer(n int) *CappedBuffer { return &CappedBuffer{n: n} }

func (c *CappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Tail is ": <what was kept>" for an error message, or "" when nothing was.
func (c *CappedBuffer) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := strings.TrimSpace(c.b.String()); s != "" {
		return ": " + s
	}
	return ""
}
