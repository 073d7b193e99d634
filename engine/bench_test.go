package engine

import (
	"context"
	"testing"
)

// BenchmarkDecide measures one decision of the bundled policy (input
// document, evaluation, strict decoding, invariants; no decision log).
func BenchmarkDecide(b *testing.B) {
	cfg := testConfig(b)
	e, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	f := goodFacts()
	for b.Loop() {
		if d := e.Decide(context.Background(), f); !d.Allow {
			b.Fatal(d.Reasons)
		}
	}
}
