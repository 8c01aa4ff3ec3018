package master

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFastWeightInfos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want []WeightInfo // nil: not taken, encoding/json decides
	}{
		{`[{"role":"role-7","weight":3.4}]`, []WeightInfo{{"role-7", 3.4}}},
		{`[{"role":"a","weight":1},{"role":"é/b","weight":-0.5e-3}]`, []WeightInfo{{"a", 1}, {"é/b", -0.5e-3}}},
		{`[{"role":"","weight":0}]`, []WeightInfo{{"", 0}}},
		{`[{"role":" ops ","weight":1E+2}]`, []WeightInfo{{" ops ", 100}}},
		{`[]`, nil},                                   // empty: left to encoding/json
		{`[{"role":"a","weight":1} ]`, nil},           // whitespace
		{` [{"role":"a","weight":1}]`, nil},           // whitespace
		{`[{"weight":1,"role":"a"}]`, nil},            // key order
		{`[{"Role":"a","weight":1}]`, nil},            // case-insensitive match
		{`[{"role":"a","weight":1,"x":2}]`, nil},      // unknown field
		{`[{"role":"a\"b","weight":1}]`, nil},         // escape
		{`[{"role":"a\u00e9","weight":1}]`, nil},      // escape
		{"[{\"role\":\"a\xffb\",\"weight\":1}]", nil}, // invalid UTF-8
		{"[{\"role\":\"a\tb\",\"weight\":1}]", nil},   // control character
		{`[{"role":"a","weight":01}]`, nil},           // leading zero
		{`[{"role":"a","weight":1.}]`, nil},           // no fraction digits
		{`[{"role":"a","weight":.5}]`, nil},           // no integer digits
		{`[{"role":"a","weight":1e}]`, nil},           // no exponent digits
		{`[{"role":"a","weight":1e999}]`, nil},        // out of range
		{`[{"role":"a","weight":"1"}]`, nil},          // string
		{`[{"role":"a","weight":NaN}]`, nil},          // not JSON
		{`[{"role":"a","weight":1}]x`, nil},           // trailing data
		{`[{"role":"a","weight":1}`, nil},             // truncated
	}
	for _, tt := range tests {
		got, ok := fastWeightInfos([]byte(tt.body))
		if ok != (tt.want != nil) || !cmp.Equal(got, tt.want) {
			t.Errorf("fastWeightInfos(%s) = %v, %v; want %v", tt.body, got, ok, tt.want)
		}
		if ok {
			var std []WeightInfo
			if err := json.Unmarshal([]byte(tt.body), &std); err != nil || !cmp.Equal(got, std) {
				t.Errorf("fastWeightInfos(%s) = %v, but encoding/json gives %v, %v", tt.body, got, std, err)
			}
		}
	}
}

// TestFastPlainBatchTakesEncodedBatches checks that what the leader writes
// for regent bench's kind of writes takes the fast path, and what it does
// not take is still decoded.
func TestFastPlainBatchTakesEncodedBatches(t *testing.T) {
	t.Parallel()
	w := func(role string, weight float64) Operation {
		return Operation{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: role, Weight: weight}}}
	}
	tests := []struct {
		name string
		b    batch
		fast bool
	}{
		{"one update", batch{Version: batchVersion, Time: 1764300000123456789, Proposer: "m1@1764300000", Seq: 42, Ops: []Operation{w("role-1", 2.5)}}, true},
		{"several", batch{Version: batchVersion, Time: -3, Proposer: "p", Seq: math.MaxUint64, Ops: []Operation{
			w("a", 1e-300), w("b", 1e300), {Type: OpUpdateWeights, WeightInfos: []WeightInfo{{"c", 1}, {"d", math.Copysign(0, -1)}}},
		}}, true},
		{"escaped role", batch{Version: batchVersion, Proposer: "p", Ops: []Operation{w("<a>", 1)}}, false},
		{"quota", batch{Version: batchVersion, Proposer: "p", Ops: []Operation{w("a", 1), {Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: "a"}}}}}, false},
		{"leader record", batch{Version: batchVersion, Proposer: "p", Ops: []Operation{{Type: OpRecover, MasterInfo: &MasterInfo{ID: "x"}}}}, false},
		{"no operations", batch{Version: batchVersion, Proposer: "p"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := encodeBatch(&tt.b)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := fastPlainBatch(data)
			if ok != tt.fast {
				t.Errorf("fastPlainBatch(%s) took it: %v, want %v", data, ok, tt.fast)
			}
			var std batch
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatal(err)
			}
			if ok {
				if diff := cmp.Diff(&std, fast); diff != "" {
					t.Errorf("fastPlainBatch(%s) (-encoding/json +fast):\n%s", data, diff)
				}
			}
			got, err := decodeBatch(data)
			if err != nil {
				t.Fatalf("decodeBatch(%s) = %v", data, err)
			}
			if diff := cmp.Diff(&std, got); diff != "" {
				t.Errorf("decodeBatch(%s) (-encoding/json +got):\n%s", data, diff)
			}
		})
	}
}

// FuzzFastJSON checks that whatever the fast paths accept, encoding/json
// decodes to the same value: applying an entry must not depend on which
// decoder read it.
func FuzzFastJSON(f *testing.F) {
	for _, s := range []string{
		`[{"role":"role-1","weight":2.5}]`,
		`[{"role":"a","weight":-0},{"role":"b","weight":1e-7}]`,
		`{"v":1,"time":1,"proposer":"m@1","seq":7,"ops":[{"type":"UPDATE_WEIGHTS","weight_infos":[{"role":"a","weight":1}]}]}`,
		`{"v":1,"time":-1,"proposer":"","seq":0,"ops":[{"type":"UPDATE_WEIGHTS","weight_infos":[{"role":"a","weight":1},{"role":"b","weight":2}]},{"type":"UPDATE_WEIGHTS","weight_infos":[{"role":"c","weight":3E2}]}]}`,
		`{"v":2,"time":1,"proposer":"m","seq":7,"ops":[{"type":"UPDATE_WEIGHTS","weight_infos":[{"role":"a","weight":1}]}]}`,
		`{"v":1,"time":1.5,"proposer":"m","seq":-7,"ops":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if ws, ok := fastWeightInfos(data); ok {
			var std []WeightInfo
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatalf("fastWeightInfos(%q) = %v, encoding/json fails: %v", data, ws, err)
			}
			if diff := cmp.Diff(std, ws); diff != "" {
				t.Fatalf("fastWeightInfos(%q) (-encoding/json +fast):\n%s", data, diff)
			}
		}
		if b, ok := fastPlainBatch(data); ok {
			var std batch
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatalf("fastPlainBatch(%q) = %+v, encoding/json fails: %v", data, b, err)
			}
			if diff := cmp.Diff(&std, b); diff != "" {
				t.Fatalf("fastPlainBatch(%q) (-encoding/json +fast):\n%s", data, diff)
			}
		}
	})
}

// BenchmarkDecodeBatch decodes an entry of six weight updates (the mean
// batch under regent bench) with the fast path and with encoding/json.
func BenchmarkDecodeBatch(b *testing.B) {
	bt := &batch{Version: batchVersion, Time: 1764300000123456789, Proposer: "m1@1764300000123456789", Seq: 12345}
	for i := range 6 {
		bt.Ops = append(bt.Ops, Operation{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: "role-" + string(rune('0'+i)) + "17", Weight: 4.5}}})
	}
	data, err := encodeBatch(bt)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, ok := fastPlainBatch(data); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var std batch
			if err := json.Unmarshal(data, &std); err != nil {
				b.Fatal(err)
			}
		}
	})
}
