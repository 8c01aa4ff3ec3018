package supervisor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

func TestRelayModuleNames(t *testing.T) {
	t.Parallel()
	tests := []struct{ module, want string }{
		{"", "regent.master"},
		{"regent", "regent.master"},
		{"regent.master", "regent.master"},
		{"regent.replog", "regent.master.replog"},
		{"regent.master.http", "regent.master.http"},
		{"replog", "regent.master.replog"},
		{"mastermind", "regent.master.mastermind"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		root := hclog.New(&hclog.LoggerOptions{Name: "regent", Output: &out, JSONFormat: true})
		rl := newRelay(root.Named("master"), newRing(4))
		rl.line(`{"@level":"debug","@message":"m","@module":"` + tt.module + `"}`)
		rl.line(`{"@level":"info","@message":"m","@module":"` + tt.module + `"}`)
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("module %q: relayed %q: %v", tt.module, out.String(), err)
		}
		if got := m["@module"]; got != tt.want {
			t.Errorf("module %q relayed as %q, want %q", tt.module, got, tt.want)
		}
	}
}

func TestRingKeepsTheLastLines(t *testing.T) {
	t.Parallel()
	r := newRing(3)
	if got := r.snapshot(); len(got) != 0 {
		t.Errorf("empty ring = %q", got)
	}
	for _, l := range []string{"a", "b", "c", "d", strings.Repeat("x", maxTailLineBytes+10)} {
		r.add(l)
	}
	want := []string{"c", "d", strings.Repeat("x", maxTailLineBytes)}
	if diff := cmp.Diff(want, r.snapshot()); diff != "" {
		t.Errorf("ring (-want +got):\n%s", diff)
	}
}
