package appliance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAPIBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"127.0.0.1:5050", "http://127.0.0.1:5050", false},
		{"http://m1:5050/master/state", "http://m1:5050", false},
		{"https://m1", "https://m1", false},
		{"ftp://m1:21", "", true},
		{"http://", "", true},
	}
	for _, tt := range tests {
		got, err := apiBase(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("apiBase(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestQuantileMs(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want float64
	}{{0.5, 500}, {0.9, 900}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}}
	for _, tt := range tests {
		if got := quantileMs(ds, tt.q); got != tt.want {
			t.Errorf("quantileMs(1..1000 ms, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	ten := ds[:10] // 1..10 ms: the median of ten is the fifth, p90 the ninth
	if got50, got90 := quantileMs(ten, 0.5), quantileMs(ten, 0.9); got50 != 5 || got90 != 9 {
		t.Errorf("quantileMs(1..10 ms) p50, p90 = %v, %v; want 5, 9", got50, got90)
	}
	if got := quantileMs(nil, 0.5); got != 0 {
		t.Errorf("quantileMs(nil) = %v, want 0", got)
	}
}

func TestProcessRSS(t *testing.T) {
	t.Parallel()
	peak, now := processRSS()
	if peak <= 0 || now <= 0 || now > peak {
		t.Errorf("processRSS() = %v, %v MiB; want 0 < now ≤ peak", peak, now)
	}
}

// TestPutWeightsFollowsRedirect checks the bench client against a follower
// that answers 307 with a scheme-relative Location, as a master does.
func TestPutWeightsFollowsRedirect(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.Path + " " + string(b))
		w.WriteHeader(http.StatusOK)
	}))
	defer leader.Close()
	lu, _ := url.Parse(leader.URL)
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "//"+lu.Host+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()

	hc := newBenchClient(2)
	lt := &leaderTracker{base: follower.URL}
	code, redirected, err := putWeights(context.Background(), hc, lt, lt.get(), []byte(`[{"role":"a","weight":2}]`))
	if err != nil || code != http.StatusOK || !redirected {
		t.Fatalf("putWeights = %d, %v, %v; want 200, redirected, nil", code, redirected, err)
	}
	if want := `PUT /master/weights [{"role":"a","weight":2}]`; got.Load() != want {
		t.Errorf("leader got %q, want %q", got.Load(), want)
	}
	if lt.get() != leader.URL {
		t.Errorf("leader remembered as %q, want %q", lt.get(), leader.URL)
	}
	// The next write goes to the leader directly.
	code, redirected, err = putWeights(context.Background(), hc, lt, lt.get(), []byte(`[]`))
	if err != nil || code != http.StatusOK || redirected {
		t.Errorf("second putWeights = %d, %v, %v; want 200, not redirected", code, redirected, err)
	}
}

// TestHTTPBenchAgainstCluster runs "regent bench" briefly against a real
// three-master cluster, entering through a follower.
func TestHTTPBenchAgainstCluster(t *testing.T) {
	c := newTestCluster(t, 3, 2) // skips with -short
	t.Parallel()
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	var follower *localMaster
	for _, m := range c.Masters() {
		if m != leader {
			follower = m
		}
	}
	code, stdout, stderr := runCLI(t, nil, "bench", "-address", follower.APIURL(), "-clients", "8", "-duration", "1s", "-roles", "5")
	if code != ExitOK {
		t.Fatalf("regent bench: exit %d: %s", code, stderr)
	}
	// The follower and the leader are watched, and neither changes.
	if !regexp.MustCompile(`(?m)^leader changes +0 \(2 masters watched; 0 master restarts seen\)$`).MatchString(stdout) {
		t.Errorf("output lacks \"leader changes 0\" with 2 masters watched and no restart:\n%s", stdout)
	}
	// The bench's own CPU (the masters are not its children here).
	if !regexp.MustCompile(`(?m)^cpu per write \(µs\) +bench \d+; total \d+$`).MatchString(stdout) {
		t.Errorf("output lacks the bench's CPU per write:\n%s", stdout)
	}
	// The leader's stages between two readings of its /metrics.
	if !regexp.MustCompile(`(?m)^  append +\d+ +[0-9.]+ / [0-9.]+ / [0-9.]+$`).MatchString(stdout) {
		t.Errorf("output lacks the leader's append stage:\n%s", stdout)
	}
	for _, want := range []string{"writes/s", "latency p50 / p99", "leader " + leader.APIURL(), "log entries written"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	ws := weights(t, c, follower)
	n := 0
	for role := range ws {
		if strings.HasPrefix(role, "role-") {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no role-* weight written; weights %v", ws)
	}

	res, err := runFailoverBench(context.Background(), c, 1, io.Discard)
	if err != nil {
		t.Fatalf("failover trial: %v", err)
	}
	if len(res.TrialsMs) != 1 || res.TrialsMs[0] <= 0 || res.MedianMs != res.TrialsMs[0] {
		t.Errorf("failover result %+v, want one positive trial", res)
	}
}

// TestLeaderWatch checks the leader-change count of "regent bench" from
// masters' /metrics/snapshot answers, sample by sample.
func TestLeaderWatch(t *testing.T) {
	t.Parallel()
	// The samples are milliseconds apart: one process answers with the
	// same uptime each time, a restarted one with a much smaller one.
	type answer struct {
		records, uptime float64
		down            bool
	}
	up := func(records, uptime float64) answer { return answer{records: records, uptime: uptime} }
	down := answer{down: true}
	tests := []struct {
		name         string
		masters      [][]answer // per master, its answer at each sample
		wantChanges  int
		wantRestarts int
	}{
		{"steady, no change", [][]answer{{up(4, 100), up(4, 100), up(4, 100)}}, 0, 0},
		{"two elections", [][]answer{{up(4, 100), up(5, 100), up(6, 100)}}, 2, 0},
		{"down for a while, same process", [][]answer{{up(1, 100), down, up(2, 100)}}, 1, 0},
		{"restarted master is not counted", [][]answer{{up(1, 100), up(3, 0.5), up(3, 0.5)}}, -1, 1},
		{"count went backwards", [][]answer{{up(7, 100), up(2, 100)}}, -1, 1},
		{"restart and a steady peer", [][]answer{
			{up(1, 100), up(1, 0.2), up(2, 0.2)},
			{up(1, 100), up(1, 100), up(2, 100)},
		}, 1, 1},
		{"the largest count among steady masters", [][]answer{
			{up(1, 100), up(2, 100), up(2, 100)},
			{down, up(5, 100), up(6, 100)}, // first seen late: misses the first change
		}, 1, 0},
		{"never answered", [][]answer{{down, down}}, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var bases []string
			var steps []*atomic.Int64
			for _, answers := range tt.masters {
				step := new(atomic.Int64)
				steps = append(steps, step)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					a := answers[step.Load()]
					if a.down || r.URL.Path != "/metrics/snapshot" {
						http.Error(w, "down", http.StatusServiceUnavailable)
						return
					}
					fmt.Fprintf(w, `{"master/uptime_secs":%v,"registrar/leader_records_applied":%v,"master/elected":0}`, a.uptime, a.records)
				}))
				t.Cleanup(srv.Close)
				bases = append(bases, srv.URL)
			}
			hc := newBenchClient(4)
			defer hc.CloseIdleConnections()
			w := newLeaderWatch(hc, append(bases, bases[0], ""))
			if len(w.masters) != len(bases) {
				t.Fatalf("newLeaderWatch(%v + a duplicate and an empty one) watches %d masters, want %d", bases, len(w.masters), len(bases))
			}
			for i := range tt.masters[0] {
				for _, s := range steps {
					s.Store(int64(i))
				}
				w.sample(context.Background())
			}
			changes, restarts := w.result()
			if changes != tt.wantChanges || restarts != tt.wantRestarts {
				t.Errorf("answers %v: result() = %d changes, %d restarts; want %d, %d", tt.masters, changes, restarts, tt.wantChanges, tt.wantRestarts)
			}
		})
	}
}
