package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/master"
)

// chaosHistory records every client call of a run. Times are monotonic
// nanoseconds since start. Safe for concurrent use.
type chaosHistory struct {
	start time.Time

	seq atomic.Int64 // last weight handed out

	mu  sync.Mutex
	ops []chaosOp
}

func newChaosHistory() *chaosHistory { return &chaosHistory{start: time.Now()} }

// now is the current history time.
func (h *chaosHistory) now() int64 { return int64(time.Since(h.start)) }

// nextWeight returns a weight no other write of the run uses.
func (h *chaosHistory) nextWeight() int64 { return h.seq.Add(1) }

func (h *chaosHistory) add(op chaosOp) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// snapshot returns the operations recorded so far, in completion order.
func (h *chaosHistory) snapshot() []chaosOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chaosOp(nil), h.ops...)
}

// chaosClient issues registry operations to one master, following 307
// redirects to the leader itself, and records each call in a history.
type chaosClient struct {
	ID   int
	Base string // the master asked first, "http://host:port"
	// HTTP must not follow redirects; its own timeout is unused (each call
	// has Timeout).
	HTTP    *http.Client
	Timeout time.Duration
	MaxHops int
	Hist    *chaosHistory
}

// newChaosHTTPClient returns a client that does not follow redirects and
// keeps its own connections.
func newChaosHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// chaosReply is what one call came to.
type chaosReply struct {
	outcome chaosOutcome
	body    []byte
	hops    []string
	err     string
	server  string // ok: the master that answered
	epoch   int64  // ok: its leadership epoch (0: no header)
}

// call performs method path with body against c.Base, following redirects.
// write says whether the call may change the registry: an error after the
// request was written, or a 5xx answer, is then an unknown outcome, while
// for a read it is just a failure.
func (c *chaosClient) call(ctx context.Context, method, path string, body []byte, write bool) chaosReply {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var rep chaosReply
	target := c.Base + path
	for range max(c.MaxHops, 1) {
		var wrote atomic.Bool
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, target, bytes.NewReader(body))
		if err != nil {
			rep.outcome, rep.err = chaosFailed, err.Error()
			return rep
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			rep.hops = append(rep.hops, req.URL.Host+" error")
			rep.err = err.Error()
			rep.outcome = chaosFailed
			if write && wrote.Load() {
				rep.outcome = chaosUnknown
			}
			return rep
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		rep.hops = append(rep.hops, req.URL.Host+" "+strconv.Itoa(resp.StatusCode))
		switch code := resp.StatusCode; {
		case code == http.StatusTemporaryRedirect:
			loc := resp.Header.Get("Location")
			u, err := req.URL.Parse(loc) // "//host:port/path" keeps the scheme
			if err != nil || loc == "" {
				rep.outcome, rep.err = chaosFailed, fmt.Sprintf("bad redirect %q", loc)
				return rep
			}
			target = u.String()
			continue
		case code == http.StatusOK:
			if rerr != nil && !write {
				rep.outcome, rep.err = chaosFailed, "read body: "+rerr.Error()
				return rep
			}
			rep.outcome, rep.body = chaosOK, b
			rep.server = req.URL.Host
			rep.epoch, _ = strconv.ParseInt(resp.Header.Get(master.LeaderEpochHeader), 10, 64)
			return rep
		case code >= 500 && write:
			// A 503 may come after the master proposed the
			// operation ("registry update not confirmed"), so it may
			// still be learned.
			rep.outcome, rep.err = chaosUnknown, strconv.Itoa(code)+" "+string(bytes.TrimSpace(b))
			return rep
		default:
			rep.outcome, rep.err = chaosFailed, strconv.Itoa(code)+" "+string(bytes.TrimSpace(b))
			return rep
		}
	}
	rep.outcome = chaosFailed
	rep.err = "too many redirects"
	return rep
}

// write sets role's weight to a fresh unique value and records the call. An
// empty role is a fresh ledger role, named after the weight.
func (c *chaosClient) write(ctx context.Context, role string) chaosOp {
	seq := c.Hist.nextWeight()
	w := float64(seq)
	if role == "" {
		role = "l" + strconv.FormatInt(seq, 10)
	}
	body, _ := json.Marshal([]map[string]any{{"role": role, "weight": w}})
	op := chaosOp{Client: c.ID, Kind: chaosWrite, Role: role, Weight: w, Call: c.Hist.now()}
	rep := c.call(ctx, http.MethodPut, "/master/weights", body, true)
	op.Return = c.Hist.now()
	op.Outcome, op.Hops, op.Err = rep.outcome, rep.hops, rep.err
	op.Server, op.Epoch = rep.server, rep.epoch
	c.Hist.add(op)
	return op
}

// read gets every role's weight and records the call.
func (c *chaosClient) read(ctx context.Context) chaosOp {
	op := chaosOp{Client: c.ID, Kind: chaosRead, Call: c.Hist.now()}
	rep := c.call(ctx, http.MethodGet, "/master/weights", nil, false)
	op.Return = c.Hist.now()
	op.Outcome, op.Hops, op.Err = rep.outcome, rep.hops, rep.err
	op.Server, op.Epoch = rep.server, rep.epoch
	if op.Outcome == chaosOK {
		ws, err := decodeWeights(rep.body)
		if err != nil {
			op.Outcome, op.Err = chaosFailed, err.Error()
		} else {
			op.Weights = ws
		}
	}
	c.Hist.add(op)
	return op
}

// decodeWeights decodes a GET /master/weights body.
func decodeWeights(b []byte) (map[string]float64, error) {
	var infos []struct {
		Role   string  `json:"role"`
		Weight float64 `json:"weight"`
	}
	if err := json.Unmarshal(b, &infos); err != nil {
		return nil, fmt.Errorf("decode weights: %w", err)
	}
	ws := make(map[string]float64, len(infos))
	for _, i := range infos {
		if _, dup := ws[i.Role]; dup {
			return nil, fmt.Errorf("decode weights: role %q listed twice", i.Role)
		}
		ws[i.Role] = i.Weight
	}
	return ws, nil
}

// chaosWorkload is what clients do: half reads, half writes; of the writes,
// one in LedgerEvery goes to a fresh ledger role, the others to one of
// Registers register roles.
type chaosWorkload struct {
	Registers   int
	LedgerEvery int
	Interval    time.Duration // between a client's calls
}

// run issues operations until ctx ends.
func (c *chaosClient) run(ctx context.Context, rng *rand.Rand, wl chaosWorkload) {
	tick := time.NewTicker(wl.Interval)
	defer tick.Stop()
	for {
		switch {
		case rng.IntN(2) == 0:
			c.read(ctx)
		case wl.LedgerEvery > 0 && rng.IntN(wl.LedgerEvery) == 0:
			c.write(ctx, "")
		default:
			c.write(ctx, "r"+strconv.Itoa(rng.IntN(wl.Registers)))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fakeWeightsMaster imitates a master's /master/weights: as leader it keeps
// the weights; otherwise it redirects to Leader or answers 503.
type fakeWeightsMaster struct {
	mu      sync.Mutex
	leader  string // "" = this one leads; "none" = no leader known; else host:port
	weights map[string]float64
	hang    chan struct{} // when non-nil, requests block until it is closed
	drop    bool          // close the connection after reading the request
	status  int           // when non-zero, the answer to every request
	epoch   int64         // as leader: its leadership epoch header, if non-zero
}

func (f *fakeWeightsMaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	leader, hang, drop, status, epoch := f.leader, f.hang, f.drop, f.status, f.epoch
	f.mu.Unlock()
	if hang != nil {
		// Read the body, so the server notices when the client hangs up.
		_, _ = io.ReadAll(r.Body)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if drop {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if status != 0 {
		http.Error(w, "injected", status)
		return
	}
	switch leader {
	case "":
		if epoch != 0 {
			w.Header().Set(master.LeaderEpochHeader, strconv.FormatInt(epoch, 10))
		}
	case "none":
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"no leader"}`, http.StatusServiceUnavailable)
		return
	default:
		w.Header().Set("Location", "//"+leader+"/master/weights")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		var infos []map[string]any
		for role, wt := range f.weights {
			infos = append(infos, map[string]any{"role": role, "weight": wt})
		}
		if infos == nil {
			infos = []map[string]any{}
		}
		_ = json.NewEncoder(w).Encode(infos)
	case http.MethodPut:
		var infos []struct {
			Role   string  `json:"role"`
			Weight float64 `json:"weight"`
		}
		if err := json.NewDecoder(r.Body).Decode(&infos); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, i := range infos {
			f.weights[i.Role] = i.Weight
		}
	}
}

func TestChaosClient(t *testing.T) {
	t.Parallel()
	type step struct {
		write   bool
		role    string // write: "" = a ledger role
		outcome chaosOutcome
		hops    int
		weights map[string]float64 // read: want
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, leader, follower *fakeWeightsMaster, leaderAddr string)
		steps []step
	}{
		{
			name: "leader answers",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = "" // the client's master leads
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosOK, hops: 1},
				{outcome: chaosOK, hops: 1, weights: map[string]float64{"r1": 1}},
			},
		},
		{
			name: "follower redirects to the leader",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = addr
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosOK, hops: 2},
				{write: true, role: "", outcome: chaosOK, hops: 2},
				{outcome: chaosOK, hops: 2, weights: map[string]float64{"r1": 1, "l2": 2}},
			},
		},
		{
			name: "no leader known is a clean failure for reads, unknown for writes",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = "none"
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosUnknown, hops: 1},
				{outcome: chaosFailed, hops: 1},
			},
		},
		{
			name: "bad request is a clean failure",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.status = http.StatusBadRequest
			},
			steps: []step{{write: true, role: "r1", outcome: chaosFailed, hops: 1}},
		},
		{
			name: "redirect loop fails",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = addr
				l.leader = addr
			},
			steps: []step{{write: true, role: "r1", outcome: chaosFailed, hops: 4}},
		},
		{
			name: "leader hangs: write unknown, read failed",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = addr
				l.hang = make(chan struct{})
				t.Cleanup(func() { close(l.hang) })
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosUnknown, hops: 2},
				{outcome: chaosFailed, hops: 2},
			},
		},
		{
			name: "leader drops the connection after the request: write unknown",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				f.leader = addr
				l.drop = true
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosUnknown, hops: 2},
				{outcome: chaosFailed, hops: 2},
			},
		},
		{
			name: "redirect to a closed port: refused before sending is a clean failure",
			setup: func(t *testing.T, l, f *fakeWeightsMaster, addr string) {
				ports, err := freePorts(1)
				if err != nil {
					t.Fatal(err)
				}
				f.leader = "127.0.0.1:" + strconv.Itoa(ports[0])
			},
			steps: []step{
				{write: true, role: "r1", outcome: chaosFailed, hops: 2},
				{outcome: chaosFailed, hops: 2},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			leader := &fakeWeightsMaster{weights: map[string]float64{}, epoch: 200}
			follower := &fakeWeightsMaster{weights: map[string]float64{}, epoch: 100}
			// Closed after the cleanups setup registers.
			ls := httptest.NewServer(leader)
			t.Cleanup(ls.Close)
			fs := httptest.NewServer(follower)
			t.Cleanup(fs.Close)
			tc.setup(t, leader, follower, ls.Listener.Addr().String())
			h := newChaosHistory()
			c := &chaosClient{ID: 3, Base: fs.URL, HTTP: newChaosHTTPClient(), Timeout: 300 * time.Millisecond, MaxHops: 4, Hist: h}
			for i, s := range tc.steps {
				var op chaosOp
				if s.write {
					op = c.write(t.Context(), s.role)
				} else {
					op = c.read(t.Context())
				}
				if op.Outcome != s.outcome || len(op.Hops) != s.hops {
					t.Errorf("step %d (%+v): got outcome %s hops %q (error %q), want %s after %d hops", i, s, op.Outcome, op.Hops, op.Err, s.outcome, s.hops)
				}
				if op.Client != 3 || op.Call > op.Return || op.Return > h.now() {
					t.Errorf("step %d: got client %d call %d return %d, want client 3, call ≤ return ≤ now", i, op.Client, op.Call, op.Return)
				}
				if s.write {
					if want := float64(i + 1); op.Weight != want {
						t.Errorf("step %d: got weight %v, want %v (unique, in order)", i, op.Weight, want)
					}
					if s.role == "" && op.Role != "l"+strconv.Itoa(i+1) {
						t.Errorf("step %d: got ledger role %q, want l%d", i, op.Role, i+1)
					}
				}
				// An acknowledged call names the master that answered
				// (the follower itself after one hop, else the leader)
				// and its epoch; others name none.
				var wantServer string
				var wantEpoch int64
				if s.outcome == chaosOK {
					wantServer, wantEpoch = fs.Listener.Addr().String(), 100
					if s.hops > 1 {
						wantServer, wantEpoch = ls.Listener.Addr().String(), 200
					}
				}
				if op.Server != wantServer || op.Epoch != wantEpoch {
					t.Errorf("step %d (%+v): got server %q epoch %d, want %q epoch %d", i, s, op.Server, op.Epoch, wantServer, wantEpoch)
				}
				if !s.write && s.outcome == chaosOK {
					if diff := cmp.Diff(s.weights, op.Weights); diff != "" {
						t.Errorf("step %d: read weights (-want +got):\n%s", i, diff)
					}
				}
			}
			if got := len(h.snapshot()); got != len(tc.steps) {
				t.Errorf("got %d recorded operations, want %d", got, len(tc.steps))
			}
		})
	}
}
