package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/nscheck/nscheck/internal/report"
)

// progress keeps one live line on a terminal while a long run goes on:
// how many properties are done, by verdict, and the last one. Each update
// rewrites the line in place (carriage return, erase to end of line); done
// erases it, so that the report printed next starts on a clean line.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	color   bool
	counts  report.Summary
	written bool
}

func newProgress(w io.Writer, color bool) *progress { return &progress{w: w, color: color} }

// result records one finished property and redraws the line.
func (p *progress) result(res report.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch res.State {
	case report.Passed:
		p.counts.Passed++
	case report.Failed:
		p.counts.Failed++
	case report.Skipped:
		p.counts.Skipped++
	}
	n := p.counts.Passed + p.counts.Failed + p.counts.Skipped
	fmt.Fprintf(p.w, "\r\x1b[Knscheck: %d done (%d passed, %d failed, %d skipped), last %s %s",
		n, p.counts.Passed, p.counts.Failed, p.counts.Skipped, report.Verdict(res.State, p.color), res.ID)
	p.written = true
}

// done erases the line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.written = false
	}
}
