package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/mapper"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGoldenInputAndDecision pins the input document and the decision of
// one denied request (alice: make -C ../../etc): the shape an operator's
// policy reads and what explain shows. Run with -update after an
// intended change, and review the diff.
func TestGoldenInputAndDecision(t *testing.T) {
	e := newEngine(t, testConfig(t))
	f := goodFacts()
	f.Request.Args = []string{"-C", "../../etc", "all"}
	f.Request.TimeoutSec = intp(120)
	f.Mapping.Make.Directories = []mapper.PathFact{pathFact("-C", "../../etc", "/etc", false)}
	f.Mapping.Make.EffectiveDir, f.Mapping.Make.EffectiveInside = "/etc", false
	ex := e.Explain(context.Background(), f)
	ex.Decision.DecisionID = "00000000-0000-4000-8000-000000000000"
	ex.Decision.Revision = "(revision)"
	got, err := json.MarshalIndent(ex, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "explain_denied.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./engine -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("explanation differs from %s (run with -update and review):\n%s", golden, got)
	}
}
