package appliance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	for _, want := range []string{"writes/s", "latency p50 / p99", "leader " + leader.APIURL()} {
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
