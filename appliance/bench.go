package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// cmdBench runs "regent bench": HTTP clients writing registry operations
// (PUT /master/weights on random roles) against a cluster, following
// redirects to the leader, or against a local three-master cluster it starts
// itself. "regent bench failover" measures failover instead.
func cmdBench(ctx context.Context, e *Env, args []string) int {
	if len(args) > 0 && args[0] == "failover" {
		fe := *e
		fe.cmd = &command{name: "failover", args: "[flags]", parent: e.cmd,
			summary: "kill -9 the leader's master repeatedly and time the first write the new leader acknowledges"}
		return cmdBenchFailover(ctx, &fe, args[1:])
	}
	fs := e.flagSet()
	var o httpBenchOptions
	address := fs.String("address", "", "a master's API address (host:port or URL); default: start a local cluster of three masters")
	fs.IntVar(&o.Clients, "clients", 64, "concurrent HTTP clients, each with one request in flight")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to write")
	fs.IntVar(&o.Roles, "roles", 1000, "number of distinct roles written")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	dir := fs.String("dir", "", "directory for the local cluster (default: a new temporary directory, removed at exit)")
	quiet := fs.Bool("quiet", true, "do not relay the local masters' logs")
	pprofOn := fs.Bool("pprof", false, "serve /debug/pprof/ on the local cluster's masters (enable_pprof) and print their API URLs")
	if code, ok := e.parseFlags(fs, args); !ok {
		if code == ExitOK { // help was printed
			fmt.Fprintf(e.Stdout, "\nSee also 'regent bench failover -h': time the failover after a kill -9 of the leader.\n")
		}
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if o.Clients < 1 || o.Clients > 10_000 {
		return e.usageError("-clients must be between 1 and 10000, not %d", o.Clients)
	}
	if o.Duration <= 0 {
		return e.usageError("-duration must be positive, not %s", o.Duration)
	}
	if o.Roles < 1 {
		return e.usageError("-roles must be positive, not %d", o.Roles)
	}
	base := *address
	if base != "" {
		u, err := apiBase(base)
		if err != nil {
			return e.usageError("-address: %v", err)
		}
		base = u
		o.Watch = []string{base}
	} else {
		extra := ""
		if *pprofOn {
			extra = "  enable_pprof = true\n"
		}
		c, cleanup, err := startBenchCluster(ctx, e, *dir, *quiet, extra)
		if err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		defer cleanup()
		base = c.Masters()[0].APIURL()
		for _, m := range c.Masters() {
			o.Watch = append(o.Watch, m.APIURL())
			if *pprofOn {
				fmt.Fprintf(e.Stderr, "%s: profiles at %s/debug/pprof/\n", m.Name, m.APIURL())
			}
		}
	}
	o.Base = base
	res, err := runHTTPBench(ctx, o)
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	if *asJSON {
		if err := json.NewEncoder(e.Stdout).Encode(res); err != nil {
			return ExitFailure
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\t%s (leader %s)\n", o.Base, res.Leader)
	fmt.Fprintf(tw, "clients\t%d\n", o.Clients)
	fmt.Fprintf(tw, "writes\t%d acknowledged in %.2f s; %d errors, %d redirects followed\n", res.Writes, res.Seconds, res.Errors, res.Redirects)
	fmt.Fprintf(tw, "writes/s\t%.0f\n", res.WritesPerS)
	fmt.Fprintf(tw, "latency p50 / p99 / max\t%.2f / %.2f / %.2f ms\n", res.P50Ms, res.P99Ms, res.MaxMs)
	if res.LeaderChanges < 0 {
		fmt.Fprintf(tw, "leader changes\tunknown (%d masters watched, every one restarted or unreachable)\n", res.MastersWatched)
	} else {
		fmt.Fprintf(tw, "leader changes\t%d (%d masters watched; %d master restarts seen)\n", res.LeaderChanges, res.MastersWatched, res.MasterRestarts)
	}
	if res.FirstError != "" {
		fmt.Fprintf(tw, "first error\t%s\n", res.FirstError)
	}
	tw.Flush()
	return ExitOK
}

// apiBase turns "host:port" or a URL into "http(s)://host:port".
func apiBase(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", err
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an http address", addr)
	}
	return u.Scheme + "://" + u.Host, nil
}

// startBenchCluster starts a local cluster of three masters under dir (a
// temporary directory if empty) with extra HCL in each master block, and
// waits for a leader. cleanup stops the masters and removes a temporary
// directory.
func startBenchCluster(ctx context.Context, e *Env, dir string, quiet bool, extra string) (*localCluster, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find own executable: %w", err)
	}
	temp := dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "regent-bench-"); err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	c := &localCluster{Binary: exe, Dir: dir, Cluster: "bench", Pretty: true, Extra: extra}
	if !quiet {
		c.Output = e.Stderr
	}
	cleanup := func() {
		_ = c.StopAll(15 * time.Second)
		if temp {
			os.RemoveAll(dir)
		}
	}
	ms, err := c.Add(3, 2)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	for _, m := range ms {
		if err := c.Start(m); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(wctx); err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, cleanup, nil
}

// httpBenchOptions configures runHTTPBench.
type httpBenchOptions struct {
	Base     string // a master's API base URL
	Clients  int
	Duration time.Duration
	Roles    int
	// Watch are the masters' API base URLs polled for leader changes; the
	// leader found at the start is added.
	Watch []string
}

// httpBenchResult is what "regent bench" reports.
type httpBenchResult struct {
	Leader     string  `json:"leader"`
	Writes     int     `json:"writes"`
	Errors     int     `json:"errors"`
	Redirects  int     `json:"redirects"`
	Seconds    float64 `json:"seconds"`
	WritesPerS float64 `json:"writes_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	// LeaderChanges is the number of elections during the run, -1 when no
	// watched master could tell (see leaderWatch).
	LeaderChanges  int    `json:"leader_changes"`
	MasterRestarts int    `json:"master_restarts"`
	MastersWatched int    `json:"masters_watched"`
	FirstError     string `json:"first_error,omitempty"`
}

// newBenchClient returns an HTTP client that keeps one idle connection per
// benchmark client and does not follow redirects (the bench follows them
// itself, once, and remembers the leader).
func newBenchClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// leaderTracker remembers the leader's base URL, learnt from 307s.
type leaderTracker struct {
	mu   sync.Mutex
	base string
}

func (l *leaderTracker) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base
}

// follow records the leader named by a 307's Location ("//host:port/…"),
// resolved against the URL that answered.
func (l *leaderTracker) follow(from *url.URL, loc string) (string, error) {
	u, err := from.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("redirect to %q: %w", loc, err)
	}
	base := u.Scheme + "://" + u.Host
	l.mu.Lock()
	l.base = base
	l.mu.Unlock()
	return base, nil
}

// putWeights sends one PUT /master/weights to base. It follows one 307 (and
// remembers the leader) and reports the final status code.
func putWeights(ctx context.Context, hc *http.Client, lt *leaderTracker, base string, body []byte) (code int, redirected bool, err error) {
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/master/weights", bytes.NewReader(body))
		if err != nil {
			return 0, redirected, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, redirected, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || hop > 0 {
			return resp.StatusCode, redirected, nil
		}
		redirected = true
		if base, err = lt.follow(req.URL, resp.Header.Get("Location")); err != nil {
			return resp.StatusCode, redirected, err
		}
	}
}

// runHTTPBench runs o.Clients writers for o.Duration. Each writes one role's
// weight per request, to the leader it last learnt of; 503s (no leader yet)
// and failures are counted as errors and retried after a short pause.
func runHTTPBench(ctx context.Context, o httpBenchOptions) (*httpBenchResult, error) {
	hc := newBenchClient(o.Clients)
	defer hc.CloseIdleConnections()
	lt := &leaderTracker{base: o.Base}

	// Find the leader first, so the clock does not run over the redirects.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := putWeights(ctx, hc, lt, lt.get(), []byte(`[{"role":"bench-warmup","weight":1}]`))
		if err == nil && code == http.StatusOK {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader acknowledged a write within 30s (last: %d %v)", code, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting on the cluster, not on our own code
	}

	watch := newLeaderWatch(hc, append(slices.Clone(o.Watch), lt.get()))
	watch.sample(ctx)

	var writes, errs, redirects atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, o.Clients)
	bctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { watch.run(bctx, time.Second) })
	for i := range o.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for bctx.Err() == nil {
				body := fmt.Appendf(nil, `[{"role":"role-%d","weight":%d.%d}]`, rng.IntN(o.Roles), 1+rng.IntN(9), rng.IntN(10))
				t0 := time.Now()
				code, red, err := putWeights(bctx, hc, lt, lt.get(), body)
				if red {
					redirects.Add(1)
				}
				if bctx.Err() != nil {
					return // the run ended mid-request: neither a write nor an error
				}
				if err == nil && code == http.StatusOK {
					writes.Add(1)
					lats[i] = append(lats[i], time.Since(t0))
					continue
				}
				errs.Add(1)
				if err == nil {
					err = fmt.Errorf("status %d", code)
				}
				firstErr.CompareAndSwap(nil, err.Error())
				time.Sleep(10 * time.Millisecond) // back off from a cluster that refused
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	watch.sample(ctx)
	changes, restarts := watch.result()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := &httpBenchResult{
		Leader:     lt.get(),
		Writes:     int(writes.Load()),
		Errors:     int(errs.Load()),
		Redirects:  int(redirects.Load()),
		Seconds:    elapsed.Seconds(),
		WritesPerS: float64(writes.Load()) / elapsed.Seconds(),
		P50Ms:      quantileMs(all, 0.50),
		P99Ms:      quantileMs(all, 0.99),

		LeaderChanges:  changes,
		MasterRestarts: restarts,
		MastersWatched: len(watch.masters),
	}
	if len(all) > 0 {
		res.MaxMs = float64(all[len(all)-1]) / float64(time.Millisecond)
	}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	return res, nil
}

// leaderWatch counts leader changes during a benchmark exactly: every
// election writes one leader record to the log, every master applies it and
// counts it in registrar/leader_records_applied (/metrics/snapshot), so the
// growth of that counter on a master that did not restart is the number of
// elections while it was watched. It polls every watched master (once a
// second during the run, and once before and after it) and takes the
// largest growth among those that stayed up; a master whose start time (now
// less its uptime) moved by more than a second, or whose count went
// backwards, restarted, which is counted separately. A leader that
// changes and changes back between two polls is still counted: the records
// are in the log, not in the poll.
type leaderWatch struct {
	hc      *http.Client
	masters []*watchedMaster
}

// watchedMaster is what the watch knows of one master.
type watchedMaster struct {
	base      string
	seen      bool      // answered at least once
	first     float64   // leader records at its first answer
	last      float64   // leader records at its last answer
	started   time.Time // its start, from its uptime at its last answer
	restarts  int       // times it was seen to have restarted
	restarted bool      // restarted at least once: its count is not the whole run's
}

// newLeaderWatch watches the masters at bases (duplicates and empty ones
// dropped).
func newLeaderWatch(hc *http.Client, bases []string) *leaderWatch {
	w := &leaderWatch{hc: hc}
	for _, b := range bases {
		if b == "" || slices.ContainsFunc(w.masters, func(m *watchedMaster) bool { return m.base == b }) {
			continue
		}
		w.masters = append(w.masters, &watchedMaster{base: b})
	}
	return w
}

// run samples every interval until ctx is done.
func (w *leaderWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.sample(ctx)
		}
	}
}

// sample polls every watched master once. Only run (or the caller before
// and after run) calls it, never two at once.
func (w *leaderWatch) sample(ctx context.Context) {
	for _, m := range w.masters {
		records, uptime, err := w.poll(ctx, m.base)
		if err != nil {
			continue // down or restarting: the next answer tells
		}
		started := time.Now().Add(-time.Duration(uptime * float64(time.Second)))
		switch {
		case !m.seen:
			m.seen, m.first = true, records
		case records < m.last || started.Sub(m.started).Abs() > time.Second:
			m.restarts++
			m.restarted = true
		}
		m.last, m.started = records, started
	}
}

// poll reads one master's leader-record count and uptime.
func (w *leaderWatch) poll(ctx context.Context, base string) (records, uptime float64, err error) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, base+"/metrics/snapshot", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s/metrics/snapshot: status %d", base, resp.StatusCode)
	}
	var snap map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return 0, 0, fmt.Errorf("GET %s/metrics/snapshot: %w", base, err)
	}
	records, ok := snap["registrar/leader_records_applied"]
	if !ok {
		return 0, 0, fmt.Errorf("GET %s/metrics/snapshot: no registrar/leader_records_applied (an older master?)", base)
	}
	return records, snap["master/uptime_secs"], nil
}

// result returns the leader changes seen (-1 when no master that answered
// stayed up throughout) and the master restarts seen.
func (w *leaderWatch) result() (changes, restarts int) {
	changes = -1
	for _, m := range w.masters {
		restarts += m.restarts
		if m.seen && !m.restarted {
			changes = max(changes, int(m.last-m.first))
		}
	}
	return changes, restarts
}

// cmdBenchFailover runs "regent bench failover": a local cluster of three
// masters; in each trial it kills the leader's master child with SIGKILL and
// times the first write a new leader acknowledges.
func cmdBenchFailover(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	trials := fs.Int("trials", 10, "number of failovers to measure")
	dir := fs.String("dir", "", "directory for the local cluster (default: a new temporary directory, removed at exit)")
	quiet := fs.Bool("quiet", true, "do not relay the masters' logs")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if *trials < 1 || *trials > 1000 {
		return e.usageError("-trials must be between 1 and 1000, not %d", *trials)
	}
	c, cleanup, err := startBenchCluster(ctx, e, *dir, *quiet, "")
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	defer cleanup()
	res, err := runFailoverBench(ctx, c, *trials, e.Stderr)
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	if *asJSON {
		if err := json.NewEncoder(e.Stdout).Encode(res); err != nil {
			return ExitFailure
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "trials\t%d\n", len(res.TrialsMs))
	var ts []string
	for _, t := range res.TrialsMs {
		ts = append(ts, strconv.FormatFloat(t, 'f', 0, 64))
	}
	fmt.Fprintf(tw, "each (ms)\t%s\n", strings.Join(ts, " "))
	fmt.Fprintf(tw, "median / p90 / max\t%.0f / %.0f / %.0f ms\n", res.MedianMs, res.P90Ms, res.MaxMs)
	tw.Flush()
	return ExitOK
}

// failoverResult is what "regent bench failover" reports.
type failoverResult struct {
	TrialsMs []float64 `json:"trials_ms"`
	MedianMs float64   `json:"median_ms"`
	P90Ms    float64   `json:"p90_ms"`
	MaxMs    float64   `json:"max_ms"`
}

// runFailoverBench runs the failover trials on c, logging each to progress.
func runFailoverBench(ctx context.Context, c *localCluster, trials int, progress io.Writer) (*failoverResult, error) {
	hc := newBenchClient(16)
	defer hc.CloseIdleConnections()
	var times []time.Duration
	for t := range trials {
		d, err := failoverTrial(ctx, c, hc)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", t+1, err)
		}
		fmt.Fprintf(progress, "trial %d: first write acknowledged by the new leader after %.0f ms\n", t+1, float64(d)/float64(time.Millisecond))
		times = append(times, d)
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	res := &failoverResult{
		MedianMs: quantileMs(sorted, 0.5),
		P90Ms:    quantileMs(sorted, 0.9),
		MaxMs:    float64(sorted[len(sorted)-1]) / float64(time.Millisecond),
	}
	for _, d := range times {
		res.TrialsMs = append(res.TrialsMs, float64(d)/float64(time.Millisecond))
	}
	return res, nil
}

// failoverTrial waits until all three masters run and agree on a leader that
// acknowledges writes, kills that leader's master child (SIGKILL), then
// writes through every master in turn until one write is acknowledged, and
// returns the time from the kill to that acknowledgement. The killed child's
// supervisor restarts it; a write acknowledged after the kill can only come
// from a new leader process.
func failoverTrial(ctx context.Context, c *localCluster, hc *http.Client) (time.Duration, error) {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var leader *localMaster
	var pid int
	for {
		l, err := c.WaitLeader(wctx)
		if err != nil {
			return 0, err
		}
		all := true
		for _, m := range c.Masters() {
			all = all && m.ChildPid() != 0
		}
		lt := &leaderTracker{}
		code, _, err := putWeights(wctx, hc, lt, l.APIURL(), []byte(`[{"role":"failover","weight":1}]`))
		if pid = l.ChildPid(); all && pid != 0 && err == nil && code == http.StatusOK {
			leader = l
			break
		}
		select {
		case <-wctx.Done():
			return 0, fmt.Errorf("no stable leader: %w", wctx.Err())
		case <-time.After(50 * time.Millisecond): // waiting on the cluster
		}
	}
	if err := syscallKill(pid); err != nil {
		return 0, fmt.Errorf("kill leader %s's master (pid %d): %w", leader.Name, pid, err)
	}
	t0 := time.Now()
	ms := c.Masters()
	body := []byte(`[{"role":"failover","weight":2}]`)
	for i := 0; ; i++ {
		if wctx.Err() != nil {
			return 0, fmt.Errorf("no write acknowledged after killing %s's master: %w", leader.Name, wctx.Err())
		}
		m := ms[i%len(ms)]
		if m == leader && i%(3*len(ms)) != 0 {
			continue // its master is dead; ask it now and then (its restarted master may lead)
		}
		rctx, rcancel := context.WithTimeout(wctx, 500*time.Millisecond)
		code, _, err := putWeights(rctx, hc, &leaderTracker{}, m.APIURL(), body)
		rcancel()
		if err == nil && code == http.StatusOK {
			return time.Since(t0), nil
		}
		if err != nil || code == http.StatusServiceUnavailable {
			time.Sleep(2 * time.Millisecond) // polling the cluster: bounds the error added to the figure
		}
	}
}

// errNoProcess is returned for a pid of 0.
var errNoProcess = errors.New("no process")

func syscallKill(pid int) error {
	if pid == 0 {
		return errNoProcess
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
