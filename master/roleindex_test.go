package master

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRoleIndexMatchesScan applies weight updates to one registry through
// a roleIndex and to another by scanning, replacing or changing the indexed
// registry behind the index's back between steps, and wants the same
// weights after every step.
func TestRoleIndexMatchesScan(t *testing.T) {
	t.Parallel()
	w := func(role string, weight float64) WeightInfo { return WeightInfo{Role: role, Weight: weight} }
	type step struct {
		update  []WeightInfo
		replace []Weight // when set, both registries are replaced by one with these weights (a snapshot)
		grow    bool     // append a weight directly to both, as no update does
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new roles then updates", []step{
			{update: []WeightInfo{w("a", 1), w("b", 2)}},
			{update: []WeightInfo{w("b", 3)}},
			{update: []WeightInfo{w("c", 4), w("a", 5)}},
		}},
		{"duplicate role in one update", []step{
			{update: []WeightInfo{w("a", 1), w("a", 2)}},
			{update: []WeightInfo{w("a", 3)}},
		}},
		{"snapshot replaces the registry", []step{
			{update: []WeightInfo{w("a", 1), w("b", 2)}},
			{replace: []Weight{{Info: w("b", 7)}, {Info: w("a", 8)}}},
			{update: []WeightInfo{w("a", 9), w("c", 1)}},
		}},
		{"snapshot with the same length", []step{
			{update: []WeightInfo{w("a", 1), w("b", 2)}},
			{replace: []Weight{{Info: w("c", 1)}, {Info: w("d", 2)}}},
			{update: []WeightInfo{w("a", 3), w("d", 4)}},
		}},
		{"snapshot with duplicate roles", []step{
			{replace: []Weight{{Info: w("a", 1)}, {Info: w("a", 2)}}},
			{update: []WeightInfo{w("a", 3)}},
		}},
		{"weights grown without the index", []step{
			{update: []WeightInfo{w("a", 1)}},
			{grow: true},
			{update: []WeightInfo{w("grown", 5), w("a", 2)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			indexed, scanned := &Registry{}, &Registry{}
			var ix roleIndex
			for i, s := range tt.steps {
				switch {
				case s.replace != nil:
					indexed = &Registry{Weights: append([]Weight(nil), s.replace...)}
					scanned = &Registry{Weights: append([]Weight(nil), s.replace...)}
				case s.grow:
					indexed.Weights = append(indexed.Weights, Weight{Info: w("grown", 1)})
					scanned.Weights = append(scanned.Weights, Weight{Info: w("grown", 1)})
				default:
					op := Operation{Type: OpUpdateWeights, WeightInfos: s.update}
					errI := indexed.applyIndexed(&op, 0, &ix)
					errS := scanned.apply(&op, 0)
					if (errI == nil) != (errS == nil) {
						t.Fatalf("step %d: indexed error %v, scanned error %v", i, errI, errS)
					}
				}
				if diff := cmp.Diff(scanned.Weights, indexed.Weights); diff != "" {
					t.Fatalf("step %d: weights (-scan +indexed):\n%s", i, diff)
				}
			}
		})
	}
}
