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
	"strings"
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

	ledgerMu  sync.Mutex
	ledgerIdx map[int64]int // an issued ledger write's sequence number → its dense index
}

func newChaosHistory() *chaosHistory { return &chaosHistory{start: time.Now()} }

// now is the current history time.
func (h *chaosHistory) now() int64 { return int64(time.Since(h.start)) }

// nextWeight returns a weight no other write of the run uses.
func (h *chaosHistory) nextWeight() int64 { return h.seq.Add(1) }

// issueLedger issues a fresh ledger write, if the run's ledger budget
// allows one now (ledgerAllowed; budget ≤ 0: no limit): it returns the
// write's sequence number and dense index, the number of ledger writes
// issued before it.
func (h *chaosHistory) issueLedger(budget int, span time.Duration) (seq int64, idx int, ok bool) {
	h.ledgerMu.Lock()
	defer h.ledgerMu.Unlock()
	if budget > 0 && !ledgerAllowed(len(h.ledgerIdx), budget, time.Duration(h.now()), span) {
		return 0, 0, false
	}
	if h.ledgerIdx == nil {
		h.ledgerIdx = map[int64]int{}
	}
	seq, idx = h.nextWeight(), len(h.ledgerIdx)
	h.ledgerIdx[seq] = idx
	return seq, idx, true
}

// ledgerIssued returns the number of ledger writes issued so far.
func (h *chaosHistory) ledgerIssued() int {
	h.ledgerMu.Lock()
	defer h.ledgerMu.Unlock()
	return len(h.ledgerIdx)
}

// ledgerAllowed reports whether one more ledger write may be issued, issued
// having been issued elapsed into a run whose budget is spread evenly over
// span: while issued < budget × elapsed / span, and never budget or more
// (span ≤ 0: the whole budget at once).
func ledgerAllowed(issued, budget int, elapsed, span time.Duration) bool {
	if issued >= budget {
		return false
	}
	if span <= 0 || elapsed >= span {
		return true
	}
	return float64(issued) < float64(budget)*float64(elapsed)/float64(span)
}

// decodeWeights decodes a GET /master/weights body into a read's Weights,
// and its ledger roles into Ledger and LedgerStray by the dense indexes h
// issued (splitLedger).
func (h *chaosHistory) decodeWeights(b []byte, op *chaosOp) error {
	var infos []roleWeight
	if err := json.Unmarshal(b, &infos); err != nil {
		return fmt.Errorf("decode weights: %w", err)
	}
	h.ledgerMu.Lock()
	defer h.ledgerMu.Unlock()
	index := func(seq int64) (int, bool) {
		i, ok := h.ledgerIdx[seq]
		return i, ok
	}
	ws, ledger, stray, err := splitLedger(infos, index, len(h.ledgerIdx))
	if err != nil {
		return fmt.Errorf("decode weights: %w", err)
	}
	op.Weights, op.Ledger, op.LedgerStray = ws, ledger, stray
	return nil
}

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

	// hasQuota is what the client last learnt of each quota role (from
	// its reads and its own writes); run picks set or remove by it.
	hasQuota map[string]bool
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

// record completes op with rep, adds it to the history and returns it. A
// successful read's body is decoded first: the weights by the history
// (chaosHistory.decodeWeights), any other target with decode; a body that
// cannot be decoded makes the read failed.
func (c *chaosClient) record(op chaosOp, rep chaosReply, decode func([]byte) (map[string]float64, error)) chaosOp {
	op.Return = c.Hist.now()
	op.Outcome, op.Hops, op.Err = rep.outcome, rep.hops, rep.err
	op.Server, op.Epoch = rep.server, rep.epoch
	if op.Kind == chaosRead && op.Outcome == chaosOK {
		var err error
		if op.Target == targetWeights {
			err = c.Hist.decodeWeights(rep.body, &op)
		} else {
			op.Weights, err = decode(rep.body)
		}
		if err != nil {
			op.Outcome, op.Err, op.Weights = chaosFailed, err.Error(), nil
		}
	}
	c.Hist.add(op)
	return op
}

// write sets role's weight to a fresh unique value and records the call. An
// empty role is a fresh ledger role, named after the weight, issued
// whatever the run's ledger budget.
func (c *chaosClient) write(ctx context.Context, role string) chaosOp {
	if role == "" {
		op, _ := c.writeLedger(ctx, 0, 0)
		return op
	}
	return c.writeWeight(ctx, role, c.Hist.nextWeight(), 0)
}

// writeLedger writes a fresh ledger role, named after its weight, and
// records the call, if the run's ledger budget allows one now
// (chaosHistory.issueLedger); ok reports whether it did.
func (c *chaosClient) writeLedger(ctx context.Context, budget int, span time.Duration) (op chaosOp, ok bool) {
	seq, idx, ok := c.Hist.issueLedger(budget, span)
	if !ok {
		return chaosOp{}, false
	}
	return c.writeWeight(ctx, ledgerRole(seq), seq, idx), true
}

// writeWeight sets role's weight to seq and records the call; idx is a
// ledger write's dense index.
func (c *chaosClient) writeWeight(ctx context.Context, role string, seq int64, idx int) chaosOp {
	w := float64(seq)
	body, _ := json.Marshal([]map[string]any{{"role": role, "weight": w}})
	op := chaosOp{Client: c.ID, Kind: chaosWrite, Role: role, Weight: w, LedgerIndex: idx, Call: c.Hist.now()}
	return c.record(op, c.call(ctx, http.MethodPut, "/master/weights", body, true), nil)
}

// read gets every role's weight and records the call.
func (c *chaosClient) read(ctx context.Context) chaosOp {
	return c.readTarget(ctx, targetWeights)
}

// readTarget gets target's part of the registry and records the call.
func (c *chaosClient) readTarget(ctx context.Context, target chaosTarget) chaosOp {
	path := "/master/weights" // decoded by the history
	var decode func([]byte) (map[string]float64, error)
	switch target {
	case targetQuota:
		path, decode = "/master/quota", decodeQuota
	case targetSchedule:
		path, decode = "/master/maintenance/schedule", decodeSchedule
	}
	op := chaosOp{Client: c.ID, Kind: chaosRead, Target: target, Call: c.Hist.now()}
	op = c.record(op, c.call(ctx, http.MethodGet, path, nil, false), decode)
	if target == targetQuota && op.Outcome == chaosOK {
		c.hasQuota = map[string]bool{}
		for r := range op.Weights {
			c.hasQuota[r] = true
		}
	}
	return op
}

// readAll reads the weights, the quota and the schedule, in that order,
// and returns the first that failed, or the last.
func (c *chaosClient) readAll(ctx context.Context) chaosOp {
	var last chaosOp
	for _, t := range []chaosTarget{targetWeights, targetQuota, targetSchedule} {
		last = c.readTarget(ctx, t)
		if last.Outcome != chaosOK {
			return last
		}
	}
	return last
}

// quotaConflict starts the error of a quota write refused because of the
// role's state (set while it has quota, or removed while it has none): an
// expected 400 under concurrent clients, not a malformed request, so the
// error does not start with the status.
const quotaConflict = "conflict: "

// setQuota gives role a quota whose cpus guarantee is a fresh unique value,
// and records the call.
func (c *chaosClient) setQuota(ctx context.Context, role string) chaosOp {
	seq := c.Hist.nextWeight()
	body, _ := json.Marshal(map[string]any{
		"role":      role,
		"guarantee": []master.Resource{{Name: "cpus", Type: "SCALAR", Scalar: master.Scalar{Value: float64(seq)}}},
	})
	op := chaosOp{Client: c.ID, Kind: chaosWrite, Target: targetQuota, Role: role, Weight: float64(seq), Call: c.Hist.now()}
	rep := c.call(ctx, http.MethodPost, "/master/quota", body, true)
	if rep.outcome == chaosFailed && strings.HasPrefix(rep.err, "400 ") && strings.Contains(rep.err, "already has quota") {
		rep.err = quotaConflict + rep.err
	}
	op = c.record(op, rep, nil)
	c.learnQuota(op, true)
	return op
}

// removeQuota removes role's quota and records the call.
func (c *chaosClient) removeQuota(ctx context.Context, role string) chaosOp {
	op := chaosOp{Client: c.ID, Kind: chaosWrite, Target: targetQuota, Role: role, Call: c.Hist.now()}
	rep := c.call(ctx, http.MethodDelete, "/master/quota/"+role, nil, true)
	if rep.outcome == chaosFailed && strings.HasPrefix(rep.err, "400 ") && strings.Contains(rep.err, "has no quota set") {
		rep.err = quotaConflict + rep.err
	}
	op = c.record(op, rep, nil)
	c.learnQuota(op, false)
	return op
}

// learnQuota updates what the client believes of op's role after a set
// (set true) or a removal: acknowledged, or refused for a conflict (a set
// because the role has quota, a removal because it has none), the role has
// quota after a set and none after a removal.
func (c *chaosClient) learnQuota(op chaosOp, set bool) {
	if c.hasQuota == nil {
		c.hasQuota = map[string]bool{}
	}
	if op.Outcome == chaosOK || strings.HasPrefix(op.Err, quotaConflict) {
		c.hasQuota[op.Role] = set
	}
}

// scheduleStart is the start of every scheduled window: a fixed time in the
// future, so the schedule never depends on the clock.
var scheduleStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// scheduleHost is the hostname of the machine a schedule write of seq names.
func scheduleHost(seq int64) string { return "s" + strconv.FormatInt(seq, 10) + ".chaos" }

// writeSchedule replaces the maintenance schedule with one window of one
// machine whose hostname carries a fresh unique value, and records the call.
func (c *chaosClient) writeSchedule(ctx context.Context) chaosOp {
	seq := c.Hist.nextWeight()
	body, _ := json.Marshal(master.Schedule{Windows: []master.Window{{
		MachineIDs: []master.MachineID{{Hostname: scheduleHost(seq)}},
		Unavailability: master.Unavailability{
			Start:    master.TimeInfo{Nanoseconds: scheduleStart},
			Duration: &master.DurationInfo{Nanoseconds: int64(time.Hour)},
		},
	}}})
	op := chaosOp{Client: c.ID, Kind: chaosWrite, Target: targetSchedule, Role: scheduleRole, Weight: float64(seq), Call: c.Hist.now()}
	return c.record(op, c.call(ctx, http.MethodPost, "/master/maintenance/schedule", body, true), nil)
}

// chaosMalformed is the value a read records for a part of the registry
// that no write of the workload could have left (no write writes it), so
// the linearizability check rejects the history.
const chaosMalformed = -1

// decodeQuota decodes a GET /master/quota body into role → the value of its
// cpus guarantee; a role whose guarantee is not one cpus scalar gets
// chaosMalformed.
func decodeQuota(b []byte) (map[string]float64, error) {
	var st struct {
		Infos []struct {
			Role      string            `json:"role"`
			Guarantee []master.Resource `json:"guarantee"`
		} `json:"infos"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode quota: %w", err)
	}
	vs := make(map[string]float64, len(st.Infos))
	for _, i := range st.Infos {
		if _, dup := vs[i.Role]; dup {
			return nil, fmt.Errorf("decode quota: role %q listed twice", i.Role)
		}
		vs[i.Role] = chaosMalformed
		if len(i.Guarantee) == 1 && i.Guarantee[0].Name == "cpus" {
			vs[i.Role] = i.Guarantee[0].Scalar.Value
		}
	}
	return vs, nil
}

// decodeSchedule decodes a GET /master/maintenance/schedule body: an empty
// schedule has no value; one window of one machine named by scheduleHost,
// with the workload's unavailability, has the value the hostname carries;
// any other schedule is chaosMalformed.
func decodeSchedule(b []byte) (map[string]float64, error) {
	var s master.Schedule
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode schedule: %w", err)
	}
	if len(s.Windows) == 0 {
		return map[string]float64{}, nil
	}
	v := float64(chaosMalformed)
	if w := s.Windows; len(w) == 1 && len(w[0].MachineIDs) == 1 && w[0].MachineIDs[0].IP == "" &&
		w[0].Unavailability.Start.Nanoseconds == scheduleStart &&
		w[0].Unavailability.Duration != nil && w[0].Unavailability.Duration.Nanoseconds == int64(time.Hour) {
		h := w[0].MachineIDs[0].Hostname
		if num, ok := strings.CutSuffix(strings.TrimPrefix(h, "s"), ".chaos"); ok {
			if seq, err := strconv.ParseInt(num, 10, 64); err == nil && seq > 0 && scheduleHost(seq) == h {
				v = float64(seq)
			}
		}
	}
	return map[string]float64{scheduleRole: v}, nil
}

// chaosWorkload is what clients do: half reads, half writes. One call in
// QuotaEvery is about the quota (of QuotaRoles roles "q<n>"), one of the
// rest in ScheduleEvery about the maintenance schedule, and the others
// about the weights: of their writes, one in LedgerEvery goes to a fresh
// ledger role, the others to one of Registers register roles. A zero
// QuotaEvery or ScheduleEvery leaves that part out.
//
// Every read lists every ledger role written so far, so a run issues at
// most LedgerBudget ledger writes (≤ 0: no limit), spread evenly over
// LedgerSpan (the fault period; ledgerAllowed): a ledger write the budget
// does not allow yet goes to a register role instead. This bounds what a
// read costs to decode and to keep, however long the run.
type chaosWorkload struct {
	Registers     int
	LedgerEvery   int
	LedgerBudget  int
	LedgerSpan    time.Duration
	QuotaRoles    int
	QuotaEvery    int
	ScheduleEvery int
	Interval      time.Duration // between a client's calls
}

// defaultLedgerBudget is the ledger writes a run issues at most: about what
// a 60 s run of 3 masters issues anyway.
const defaultLedgerBudget = 1500

// defaultChaosWorkload is the harness's mix: 80 % of the calls on the
// weights, 15 % on the quota of 4 roles, 5 % on the schedule; half of each
// are writes. Its ledger budget is spread over span.
func defaultChaosWorkload(interval, span time.Duration) chaosWorkload {
	return chaosWorkload{Registers: 8, LedgerEvery: 5, LedgerBudget: defaultLedgerBudget, LedgerSpan: span,
		QuotaRoles: 4, QuotaEvery: 7, ScheduleEvery: 17, Interval: interval}
}

// step issues one operation drawn from wl.
func (c *chaosClient) step(ctx context.Context, rng *rand.Rand, wl chaosWorkload) chaosOp {
	switch {
	case wl.QuotaEvery > 0 && wl.QuotaRoles > 0 && rng.IntN(wl.QuotaEvery) == 0:
		if rng.IntN(2) == 0 {
			return c.readTarget(ctx, targetQuota)
		}
		role := "q" + strconv.Itoa(rng.IntN(wl.QuotaRoles))
		if c.hasQuota[role] {
			return c.removeQuota(ctx, role)
		}
		return c.setQuota(ctx, role)
	case wl.ScheduleEvery > 0 && rng.IntN(wl.ScheduleEvery) == 0:
		if rng.IntN(2) == 0 {
			return c.readTarget(ctx, targetSchedule)
		}
		return c.writeSchedule(ctx)
	case rng.IntN(2) == 0:
		return c.read(ctx)
	case wl.LedgerEvery > 0 && rng.IntN(wl.LedgerEvery) == 0:
		if op, ok := c.writeLedger(ctx, wl.LedgerBudget, wl.LedgerSpan); ok {
			return op
		}
		return c.write(ctx, "r"+strconv.Itoa(rng.IntN(wl.Registers)))
	default:
		return c.write(ctx, "r"+strconv.Itoa(rng.IntN(wl.Registers)))
	}
}

// run issues operations until ctx ends.
func (c *chaosClient) run(ctx context.Context, rng *rand.Rand, wl chaosWorkload) {
	tick := time.NewTicker(wl.Interval)
	defer tick.Stop()
	for {
		c.step(ctx, rng, wl)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fakeWeightsMaster imitates a master's /master/weights, /master/quota and
// /master/maintenance/schedule: as leader it keeps them, refusing a quota
// set or removal that conflicts with the role's state as the master does;
// otherwise it redirects to Leader or answers 503.
type fakeWeightsMaster struct {
	mu       sync.Mutex
	leader   string // "" = this one leads; "none" = no leader known; else host:port
	weights  map[string]float64
	quota    map[string]float64 // role → cpus guarantee
	schedule []byte             // the last schedule posted (nil: none)
	hang     chan struct{}      // when non-nil, requests block until it is closed
	drop     bool               // close the connection after reading the request
	status   int                // when non-zero, the answer to every request
	epoch    int64              // as leader: its leadership epoch header, if non-zero
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
		w.Header().Set("Location", "//"+leader+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch path := r.URL.Path; {
	case path == "/master/weights":
		f.serveWeights(w, r)
	case path == "/master/quota" && r.Method == http.MethodGet:
		st := map[string]any{}
		var infos []map[string]any
		for role, v := range f.quota {
			infos = append(infos, map[string]any{"role": role, "guarantee": []master.Resource{{Name: "cpus", Type: "SCALAR", Scalar: master.Scalar{Value: v}}}})
		}
		if infos != nil {
			st["infos"] = infos
		}
		_ = json.NewEncoder(w).Encode(st)
	case path == "/master/quota" && r.Method == http.MethodPost:
		var q struct {
			Role      string            `json:"role"`
			Guarantee []master.Resource `json:"guarantee"`
		}
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil || len(q.Guarantee) != 1 {
			http.Error(w, fmt.Sprintf("bad quota request (%v)", err), http.StatusBadRequest)
			return
		}
		if _, ok := f.quota[q.Role]; ok {
			http.Error(w, "Failed to validate set quota request: Quota cannot be set for a role that already has quota", http.StatusBadRequest)
			return
		}
		f.quota[q.Role] = q.Guarantee[0].Scalar.Value
	case strings.HasPrefix(path, "/master/quota/") && r.Method == http.MethodDelete:
		role := strings.TrimPrefix(path, "/master/quota/")
		if _, ok := f.quota[role]; !ok {
			http.Error(w, "Failed to remove quota: Role '"+role+"' has no quota set", http.StatusBadRequest)
			return
		}
		delete(f.quota, role)
	case path == "/master/maintenance/schedule" && r.Method == http.MethodGet:
		if f.schedule == nil {
			_, _ = w.Write([]byte("{}"))
			return
		}
		_, _ = w.Write(f.schedule)
	case path == "/master/maintenance/schedule" && r.Method == http.MethodPost:
		b, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(b) {
			http.Error(w, "bad schedule", http.StatusBadRequest)
			return
		}
		f.schedule = b
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeWeightsMaster) serveWeights(w http.ResponseWriter, r *http.Request) {
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
		ledger  []uint64           // read: want, the ledger roles seen (by dense index)
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
				{outcome: chaosOK, hops: 2, weights: map[string]float64{"r1": 1}, ledger: []uint64{1}},
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
			leader := &fakeWeightsMaster{weights: map[string]float64{}, quota: map[string]float64{}, epoch: 200}
			follower := &fakeWeightsMaster{weights: map[string]float64{}, quota: map[string]float64{}, epoch: 100}
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
					if diff := cmp.Diff(s.ledger, op.Ledger); diff != "" {
						t.Errorf("step %d: read ledger (-want +got):\n%s", i, diff)
					}
				}
			}
			if got := len(h.snapshot()); got != len(tc.steps) {
				t.Errorf("got %d recorded operations, want %d", got, len(tc.steps))
			}
		})
	}
}

// TestChaosStepLedgerBudget checks that a client's ledger writes beyond the
// run's budget go to register roles instead.
func TestChaosStepLedgerBudget(t *testing.T) {
	t.Parallel()
	leader := &fakeWeightsMaster{weights: map[string]float64{}, quota: map[string]float64{}}
	ls := httptest.NewServer(leader)
	t.Cleanup(ls.Close)
	h := newChaosHistory()
	c := &chaosClient{ID: 1, Base: ls.URL, HTTP: newChaosHTTPClient(), Timeout: 2 * time.Second, MaxHops: 1, Hist: h}
	wl := chaosWorkload{Registers: 2, LedgerEvery: 1, LedgerBudget: 3, Interval: time.Millisecond}
	rng := rand.New(rand.NewPCG(5, 1))
	writes := map[bool]int{} // ledger role → count
	var idxs []int
	for range 60 {
		op := c.step(t.Context(), rng, wl)
		if op.Kind != chaosWrite {
			continue
		}
		writes[op.ledgerWrite()]++
		if op.ledgerWrite() {
			idxs = append(idxs, op.LedgerIndex)
		}
	}
	if writes[true] != 3 || writes[false] == 0 {
		t.Errorf("got %d ledger and %d register writes, want 3 ledger (the budget) and some register", writes[true], writes[false])
	}
	if diff := cmp.Diff([]int{0, 1, 2}, idxs); diff != "" {
		t.Errorf("ledger writes' indexes (-want +got):\n%s", diff)
	}
	op := c.read(t.Context())
	if n := popcount(op.Ledger); op.Outcome != chaosOK || n != 3 || len(op.LedgerStray) != 0 {
		t.Errorf("read: got %s with %d ledger roles, stray %v; want ok with 3, none", op.Outcome, n, op.LedgerStray)
	}
	if bad := checkLedger(h.snapshot(), 10); len(bad) > 0 {
		t.Errorf("checkLedger: %q", bad)
	}
}
