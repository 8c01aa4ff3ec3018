package master

import (
	"fmt"
	"math"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

func TestPlainBatch(t *testing.T) {
	t.Parallel()
	w := func(role string, weight float64) Operation {
		return Operation{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: role, Weight: weight}}}
	}
	tests := []struct {
		name string
		ops  []Operation
		want bool
	}{
		{"weights", []Operation{w("dev", 2), w("ops/a", 0.5)}, true},
		{"escaped characters", []Operation{w("<a&b>\"\\\u2028\t", 1)}, true},
		{"invalid UTF-8 role", []Operation{w("dev", 2), w("a\xffb", 1)}, false},
		{"infinite weight", []Operation{w("dev", math.Inf(1))}, false},
		{"no weight infos", []Operation{{Type: OpUpdateWeights}}, false},
		{"empty weight infos", []Operation{{Type: OpUpdateWeights, WeightInfos: []WeightInfo{}}}, false},
		{"weights and another field", []Operation{{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: "a", Weight: 1}}, Machines: []MachineID{}}}, false},
		{"quota", []Operation{w("dev", 2), {Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: "dev"}}}}, false},
		{"leader record", []Operation{{Type: OpRecover, MasterInfo: &MasterInfo{ID: "x"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &batch{Version: batchVersion, Time: 1, Proposer: "m@1", Seq: 1, Ops: tt.ops}
			if got := plainBatch(b); got != tt.want {
				t.Errorf("plainBatch(%+v) = %v, want %v", tt.ops, got, tt.want)
			}
		})
	}
}

// FuzzPlainBatchRoundTrip checks the promise plainBatch makes: a plain
// batch decodes from its encoding to exactly what was encoded, so the
// leader applying it as built applies what every other master decodes.
func FuzzPlainBatchRoundTrip(f *testing.F) {
	f.Add("dev", 2.5, "ops", 1e-300, int64(1), "m@1")
	f.Add("<&>", math.Copysign(0, -1), "\u2028\u2029", 1e300, int64(-5), "id@2")
	f.Add("a\xff", 1.0, "b", 3.0, int64(0), "x")
	f.Add("", 0.1, "\x00\x1f", 7.0, int64(math.MaxInt64), "\xfe")
	f.Fuzz(func(t *testing.T, role1 string, w1 float64, role2 string, w2 float64, at int64, proposer string) {
		b := &batch{Version: batchVersion, Time: at, Proposer: proposer, Seq: 7, Ops: []Operation{
			{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: role1, Weight: w1}, {Role: role2, Weight: w2}}},
			{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: role2, Weight: w1}}},
		}}
		if !plainBatch(b) {
			return
		}
		data, err := encodeBatch(b)
		if err != nil {
			t.Fatalf("encode plain batch %+v: %v", b, err)
		}
		got, err := decodeBatch(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if diff := cmp.Diff(b, got); diff != "" {
			t.Errorf("plain batch %s does not round-trip (-built +decoded):\n%s", data, diff)
		}
	})
}

// TestLeaderAppliesOwnPlainBatches checks that the leader applies its own
// weight batches without decoding them, decodes the others, and ends with
// the registry a replay of the log gives.
func TestLeaderAppliesOwnPlainBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, nil)
		settle()
		for i := range 5 {
			if rec := m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%d","weight":%d}]`, i, i+1)); rec.Code != 200 {
				t.Fatalf("PUT /weights = %d %s", rec.Code, rec.Body.String())
			}
		}
		if rec := m.do("PUT", "/weights", `[{"role":"r\u00e9","weight":1.5}]`); rec.Code != 200 {
			t.Fatalf("PUT /weights = %d %s", rec.Code, rec.Body.String())
		}
		if rec := m.do("POST", "/quota", `{"role":"q","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}`); rec.Code != 200 {
			t.Fatalf("POST /quota = %d %s", rec.Code, rec.Body.String())
		}
		m.reg.mu.RLock()
		used, left := m.reg.plainUsed, len(m.reg.plain)
		m.reg.mu.RUnlock()
		if used != 6 || left != 0 {
			t.Errorf("own plain batches applied without decoding = %d, still held = %d; want 6, 0", used, left)
		}
		if diff := cmp.Diff(m.registryJSON(t), registryJSON(t, replay(t, c.all()))); diff != "" {
			t.Errorf("replay differs (-leader +replay):\n%s", diff)
		}
	})
}
