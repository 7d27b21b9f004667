package specs

import (
	"context"
	"fmt"
	"sync"

	"github.com/nscheck/nscheck/prop"
)

// Ginkgo runs the specs of a process one after another. A property's cost
// is mostly waiting on helpers and the kernel, so Concurrent lets up to n
// properties be evaluated at once in this process: workers evaluate the
// properties ahead of the specs, and each spec takes its property's
// evaluation (or evaluates it itself when no worker has started it yet).
// The verdict, its assertions and its report stay in the spec.

// ahead holds the evaluations of one Concurrent call.
type ahead struct {
	mu      sync.Mutex
	byID    map[string]*evaluation
	pending []*evaluation // not started yet, in the order they are wanted
}

type evaluation struct {
	p       *prop.Property
	started bool
	done    chan struct{}
	ev      prop.Evaluation
}

var (
	aheadMu sync.Mutex
	current *ahead
)

// Concurrent evaluates up to n of props at once from now on (n-1 workers
// plus the spec that runs), in the order given, which should be the order
// the specs run in. stop cancels the evaluations still running, waits for
// them and returns the specs to evaluating their property themselves. With
// n < 2 it does nothing.
func Concurrent(props []*prop.Property, n int) (stop func()) {
	if n < 2 || len(props) == 0 {
		return func() {}
	}
	a := &ahead{byID: make(map[string]*evaluation, len(props))}
	for _, p := range props {
		e := &evaluation{p: p, done: make(chan struct{})}
		a.byID[p.ID] = e
		a.pending = append(a.pending, e)
	}
	aheadMu.Lock()
	current = a
	aheadMu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range min(n-1, len(props)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				e := a.next()
				if e == nil {
					return
				}
				e.run(ctx)
			}
		}()
	}
	return func() {
		aheadMu.Lock()
		current = nil
		aheadMu.Unlock()
		cancel()
		wg.Wait()
	}
}

// next takes the first property that nobody has started.
func (a *ahead) next() *evaluation {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.pending) > 0 {
		e := a.pending[0]
		a.pending = a.pending[1:]
		if !e.started {
			e.started = true
			return e
		}
	}
	return nil
}

// claim returns p's evaluation and whether the caller must run it.
func (a *ahead) claim(id string) (*evaluation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byID[id]
	if !ok {
		return nil, false
	}
	mine := !e.started
	e.started = true
	return e, mine
}

func (e *evaluation) run(ctx context.Context) {
	e.ev = prop.Evaluate(ctx, e.p)
	close(e.done)
}

// evaluate is what a spec does: take its property's evaluation from the
// workers, or evaluate it in place.
func evaluate(ctx context.Context, p *prop.Property) prop.Evaluation {
	aheadMu.Lock()
	a := current
	aheadMu.Unlock()
	if a == nil {
		return prop.Evaluate(ctx, p)
	}
	e, mine := a.claim(p.ID)
	switch {
	case e == nil:
		return prop.Evaluate(ctx, p)
	case mine:
		e.run(ctx)
		return e.ev
	}
	select {
	case <-e.done:
		return e.ev
	case <-ctx.Done():
		return prop.Evaluation{Err: fmt.Errorf("stopped while %s was evaluated ahead: %w", p.ID, context.Cause(ctx))}
	}
}
