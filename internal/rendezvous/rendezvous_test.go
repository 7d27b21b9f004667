package rendezvous

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestTurns(t *testing.T) {
	g, err := Listen(filepath.Join(t.TempDir(), "gate"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	deadline := time.Now().Add(5 * time.Second)
	var acted atomic.Bool
	done := make(chan error, 1)
	go func() {
		err := Arrive(g.Path(), deadline)
		if err == nil && !acted.Load() {
			t.Error("the helper went on before the host acted")
		}
		done <- err
	}()
	v, err := g.Wait(deadline)
	if err != nil {
		t.Fatal(err)
	}
	acted.Store(true)
	if err := v.Proceed(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWaitIsBounded(t *testing.T) {
	g, err := Listen(filepath.Join(t.TempDir(), "gate"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Wait(time.Now().Add(50 * time.Millisecond)); err == nil {
		t.Fatal("Wait returned without a helper")
	}
}

func TestArriveIsBoundedWhenHostNeverProceeds(t *testing.T) {
	g, err := Listen(filepath.Join(t.TempDir(), "gate"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	go func() { _, _ = g.Wait(time.Now().Add(5 * time.Second)) }()
	if err := Arrive(g.Path(), time.Now().Add(100*time.Millisecond)); err == nil {
		t.Fatal("Arrive returned without Proceed")
	}
}
