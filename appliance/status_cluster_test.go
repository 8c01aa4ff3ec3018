package appliance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
)

// A replica that catches up shows its progress, rate and time left on the
// "this master" line of "regent status", and in GET /replog/status; one that
// does not shows none.
func TestStatusCatchup(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		p    replog.CatchupProgress
		json string // the catchup object, "" when absent
		line string // the "this master" line
	}{{
		name: "measured",
		p: replog.CatchupProgress{Active: true, Peer: 7, From: 100, Target: 1_000_100, LearnedTo: 450_100, Requests: 8,
			Started: now.Add(-15 * time.Second), Rate: 31_000.4, ETA: 17740 * time.Millisecond, LearnedTotal: 450_000},
		json: `{"peer":"7","from":100,"target":1000100,"learned_to":450100,"done":450000,"total":1000000,"requests":8,"positions_per_second":31000.4,"eta_ms":17740,"elapsed_ms":15000}`,
		line: "this master: replica 8 at 10.0.0.4:5051: follower, RECOVERING, not a voter, catching up 45 % (450,000 / 1,000,000, 31,000/s, ETA 18 s) from replica 7",
	}, {
		name: "long",
		p: replog.CatchupProgress{Active: true, Peer: 7, Target: 90_000_000, LearnedTo: 1_234, Started: now,
			Rate: 999.5, ETA: 2*time.Hour + 7*time.Minute + 10*time.Second},
		json: `{"peer":"7","from":0,"target":90000000,"learned_to":1234,"done":1234,"total":90000000,"requests":0,"positions_per_second":999.5,"eta_ms":7630000,"elapsed_ms":0}`,
		line: "this master: replica 8 at 10.0.0.4:5051: follower, RECOVERING, not a voter, catching up 0 % (1,234 / 90,000,000, 1,000/s, ETA 2 h 07 min) from replica 7",
	}, {
		name: "not yet measured",
		p:    replog.CatchupProgress{Active: true, Peer: 7, From: 10, Target: 110, LearnedTo: 60, Requests: 1, Started: now},
		json: `{"peer":"7","from":10,"target":110,"learned_to":60,"done":50,"total":100,"requests":1,"positions_per_second":0,"eta_ms":0,"elapsed_ms":0}`,
		line: "this master: replica 8 at 10.0.0.4:5051: follower, RECOVERING, not a voter, catching up 50 % (50 / 100, rate not yet known) from replica 7",
	}, {
		name: "none",
		p:    replog.CatchupProgress{LearnedTotal: 99},
		line: "this master: replica 8 at 10.0.0.4:5051: follower, RECOVERING, not a voter\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &statusJSON{Replica: 8, Address: "10.0.0.4:5051", Role: "follower", Status: "RECOVERING", Members: []memberJSON{},
				Catchup: toCatchupJSON(tc.p, now)}
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.json, string(obj["catchup"])); diff != "" {
				t.Errorf("progress %+v: catchup JSON (-want +got):\n%s", tc.p, diff)
			}
			var back statusJSON
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			writeClusterView(&out, "http://10.0.0.4:5050", clusterView{Local: &back, Error: "no leader"})
			if !strings.Contains(out.String(), tc.line) {
				t.Errorf("progress %+v: view lacks %q:\n%s", tc.p, tc.line, out.String())
			}
		})
	}
}

func TestStatusGroupDigitsAndRoughDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"}, {1234567, "1,234,567"}} {
		if got := groupDigits(tc.n); got != tc.want {
			t.Errorf("groupDigits(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0 s"}, {1499 * time.Millisecond, "1 s"}, {59 * time.Second, "59 s"}, {245 * time.Second, "4 min 05 s"}, {time.Hour + 29*time.Second, "1 h 00 min"}, {time.Hour + 30*time.Second, "1 h 01 min"}} {
		if got := roughDuration(tc.d); got != tc.want {
			t.Errorf("roughDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
