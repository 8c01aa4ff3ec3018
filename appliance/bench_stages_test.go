package appliance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stagesMetrics is a leader's /metrics as the bench reads it: a write
// stage, the HTTP histogram of PUT /master/weights (with a 400 series that
// must be ignored) and the batch histograms.
const stagesMetrics = `# TYPE regent_registrar_write_stage_seconds histogram
regent_registrar_write_stage_seconds_bucket{stage="queue",le="0.001"} %d
regent_registrar_write_stage_seconds_bucket{stage="queue",le="0.002"} %d
regent_registrar_write_stage_seconds_bucket{stage="queue",le="+Inf"} %d
regent_registrar_write_stage_seconds_sum{stage="queue"} %g
regent_registrar_write_stage_seconds_count{stage="queue"} %d
# TYPE regent_http_request_duration_seconds histogram
regent_http_request_duration_seconds_bucket{code="200",handler="PUT /master/weights",method="PUT",le="0.01"} %d
regent_http_request_duration_seconds_bucket{code="200",handler="PUT /master/weights",method="PUT",le="+Inf"} %d
regent_http_request_duration_seconds_sum{code="200",handler="PUT /master/weights",method="PUT"} %g
regent_http_request_duration_seconds_count{code="200",handler="PUT /master/weights",method="PUT"} %d
regent_http_request_duration_seconds_bucket{code="400",handler="PUT /master/weights",method="PUT",le="0.01"} 7
regent_http_request_duration_seconds_bucket{code="400",handler="PUT /master/weights",method="PUT",le="+Inf"} 7
regent_http_request_duration_seconds_sum{code="400",handler="PUT /master/weights",method="PUT"} 0.007
regent_http_request_duration_seconds_count{code="400",handler="PUT /master/weights",method="PUT"} 7
# TYPE regent_registrar_batch_operations histogram
regent_registrar_batch_operations_bucket{le="4"} %d
regent_registrar_batch_operations_bucket{le="+Inf"} %d
regent_registrar_batch_operations_sum %g
regent_registrar_batch_operations_count %d
`

// TestWriteStagesBetweenScrapes reads a fake leader's /metrics twice and
// checks the stages and batch shape of the writes in between.
func TestWriteStagesBetweenScrapes(t *testing.T) {
	t.Parallel()
	var scrape int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if scrape == 0 {
			// 10 queued operations, all under 1 ms; 5 requests; 2 batches.
			fmt.Fprintf(w, stagesMetrics, 10, 10, 10, 0.005, 10, 5, 5, 0.02, 5, 2, 2, 10.0, 2)
		} else {
			// 100 more: 50 in (1, 2] ms, 50 above; 100 requests of 5 ms
			// each; 10 batches of 10 operations.
			fmt.Fprintf(w, stagesMetrics, 10, 60, 110, 0.005+0.25, 110, 105, 105, 0.02+0.5, 105, 2, 12, 110.0, 12)
		}
		scrape++
	}))
	defer srv.Close()
	before, err := writeMetrics(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatalf("first scrape: %v", err)
	}
	after, err := writeMetrics(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatalf("second scrape: %v", err)
	}
	res := &httpBenchResult{}
	stagesBetween(res, before, after)
	want := []benchStage{
		// 100 requests all in the first bucket (0, 10 ms]: the median is
		// interpolated at its middle, p99 near its top.
		{Name: "http", Count: 100, MeanMs: 5, P50Ms: 5, P99Ms: 9.9},
		// 100 operations: 50 in (1, 2] ms, 50 past 2 ms (+Inf: the last
		// finite bound is reported).
		{Name: "queue", Count: 100, MeanMs: 2.5, P50Ms: 2, P99Ms: 2},
	}
	approx := cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })
	if diff := cmp.Diff(want, res.Stages, approx); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&benchBatches{Entries: 10, MeanOps: 10}, res.Batches, approx); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}

	// A master without the stage histograms is named as such.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE up gauge\nup 1\n")
	}))
	defer old.Close()
	if _, err := writeMetrics(context.Background(), old.Client(), old.URL); err == nil {
		t.Errorf("writeMetrics of a master without stages = nil error, want one")
	}
}

// TestPutRawFollowsRedirectAndReconnects checks the bench's own HTTP/1.1
// client: the request a server sees, a 307 followed to the leader and
// remembered, keep-alive (one connection for several writes), and a new
// connection after the server closes one.
func TestPutRawFollowsRedirectAndReconnects(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		got   []string
		conns = map[string]bool{}
	)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %s %s %d %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Proto, r.ContentLength, b))
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if string(b) == "close" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer leader.Close()
	lu, _ := url.Parse(leader.URL)
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "//"+lu.Host+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()

	var c rawClient
	defer c.close()
	lt := &leaderTracker{base: follower.URL}
	ctx := context.Background()
	type step struct {
		code       int
		redirected bool
	}
	var steps []step
	for _, body := range []string{`[{"role":"a","weight":2}]`, `[]`, `close`, `[]`} {
		code, redirected, err := putRaw(ctx, &c, lt, lt.get(), []byte(body))
		if err != nil {
			t.Fatalf("putRaw(%s) = %v", body, err)
		}
		steps = append(steps, step{code, redirected})
	}
	// Only the first is redirected: the leader is remembered.
	wantSteps := []step{{200, true}, {200, false}, {200, false}, {200, false}}
	if diff := cmp.Diff(wantSteps, steps, cmp.AllowUnexported(step{})); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if lt.get() != leader.URL {
		t.Errorf("leader remembered as %q, want %q", lt.get(), leader.URL)
	}
	want := []string{
		`PUT /master/weights application/json HTTP/1.1 25 [{"role":"a","weight":2}]`,
		`PUT /master/weights application/json HTTP/1.1 2 []`,
		`PUT /master/weights application/json HTTP/1.1 5 close`,
		`PUT /master/weights application/json HTTP/1.1 2 []`,
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests the leader saw (-want +got):\n%s", diff)
	}
	// Three writes on one connection, the one after "close" on another.
	if len(conns) != 2 {
		t.Errorf("leader saw %d connections, want 2", len(conns))
	}
}

// TestRawClientKeepsTheBasePath: a base URL with a path (a master behind a
// proxy) gets its writes under that path, as net/http's client sends them.
func TestRawClientKeepsTheBasePath(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL + "/regent", srv.URL + "/regent/"} {
		var c rawClient
		code, _, err := c.put(context.Background(), base, []byte(`[]`))
		c.close()
		if err != nil || code != http.StatusOK {
			t.Fatalf("put(%s) = %d, %v", base, code, err)
		}
		if got := <-paths; got != "/regent/master/weights" {
			t.Errorf("put(%s): server saw %q, want /regent/master/weights", base, got)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line    string
		want    time.Duration
		wantErr bool
	}{
		// utime 150 and stime 25 ticks: 1.75 s.
		{"4242 (regent) S 1 4242 4242 0 -1 4194304 5000 0 0 0 150 25 0 0 20 0 12 0 100 2000000 3000", 1750 * time.Millisecond, false},
		// A command name with spaces and parentheses.
		{"7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1", 70 * time.Millisecond, false},
		{"7 (a) R 1 7", 0, true},
		{"7 a R 1 7 7 0 -1 0 0 0 0 0 3 4", 0, true},
		{"7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 4", 0, true},
	}
	for _, tt := range tests {
		got, err := parseProcStat([]byte(tt.line))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseProcStat(%q) = %v, %v; want %v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}
