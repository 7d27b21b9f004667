package specs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nscheck/nscheck/prop"
)

// gate is a set of checks that block until released, counting how many
// run at once.
type gate struct {
	release            chan struct{}
	running, most, ran atomic.Int32
	entered            chan string
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), entered: make(chan string, 100)}
}

func (g *gate) props(n int) []*prop.Property {
	var ps []*prop.Property
	for i := range n {
		id := fmt.Sprintf("test.p%d", i)
		ps = append(ps, &prop.Property{ID: id, Title: id, NoControl: "test", Check: func(t *prop.Trial) error {
			now := g.running.Add(1)
			defer g.running.Add(-1)
			for m := g.most.Load(); now > m && !g.most.CompareAndSwap(m, now); m = g.most.Load() {
			}
			g.ran.Add(1)
			g.entered <- id
			select {
			case <-g.release:
				t.Inside("id", id)
				return nil
			case <-t.Context().Done():
				return t.Context().Err()
			}
		}})
	}
	return ps
}

// Up to n properties run at once, each exactly once, and every spec gets
// its own property's evaluation.
func TestConcurrentRunsAheadAndOnce(t *testing.T) {
	g := newGate()
	ps := g.props(6)
	stop := Concurrent(ps, 3)
	defer stop()
	// The two workers start the first two properties before any spec.
	<-g.entered
	<-g.entered
	var wg sync.WaitGroup
	results := make([]prop.Evaluation, len(ps))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range ps { // the specs, one after another
			results[i] = evaluate(context.Background(), p)
		}
	}()
	// The first spec waits for its property; with the gate shut no more
	// than three run at once: two workers and nothing else (the spec
	// found its property started).
	close(g.release)
	wg.Wait()
	if most := g.most.Load(); most < 2 || most > 3 {
		t.Errorf("%d properties ran at once, want 2 or 3", most)
	}
	if ran := g.ran.Load(); ran != int32(len(ps)) {
		t.Errorf("%d evaluations for %d properties", ran, len(ps))
	}
	for i, ev := range results {
		if ev.Err != nil || ev.Evidence["inside"]["id"] != ps[i].ID {
			t.Errorf("spec %d got %+v", i, ev)
		}
	}
}

// A property that is not in the list, or any property after stop, is
// evaluated by the spec itself.
func TestConcurrentFallsBackToInPlace(t *testing.T) {
	g := newGate()
	close(g.release)
	ps := g.props(2)
	stop := Concurrent(ps[:1], 2)
	if ev := evaluate(context.Background(), ps[1]); ev.Err != nil || ev.Evidence["inside"]["id"] != ps[1].ID {
		t.Errorf("unlisted property: %+v", ev)
	}
	stop()
	if ev := evaluate(context.Background(), ps[0]); ev.Err != nil || ev.Evidence["inside"]["id"] != ps[0].ID {
		t.Errorf("after stop: %+v", ev)
	}
	if noop := Concurrent(ps, 1); noop == nil {
		t.Error("Concurrent(n=1) gave no stop function")
	}
}

// stop cancels evaluations still running and waits for them; a spec that
// is interrupted while waiting says so.
func TestConcurrentStopCancels(t *testing.T) {
	g := newGate()
	ps := g.props(2)
	stop := Concurrent(ps, 2)
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ev := evaluate(ctx, ps[0]); ev.Err == nil {
		t.Error("an interrupted spec reported no error")
	}
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stop did not cancel the running evaluation")
	}
	if g.running.Load() != 0 {
		t.Error("an evaluation is still running after stop")
	}
}
