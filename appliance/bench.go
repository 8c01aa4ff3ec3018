package appliance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
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

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
	fs.BoolVar(&o.StdClient, "stdclient", false, "send with Go's net/http client instead of the bench's own HTTP/1.1 writer (the same requests; the load generator then takes about twice the CPU per write from the masters it shares the machine with)")
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
			o.Procs = append(o.Procs, benchProc{Name: m.Name, Base: m.APIURL(), Pid: m.ChildPid})
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
	printCPU(tw, res)
	printWriteStages(tw, res)
	tw.Flush()
	return ExitOK
}

// printCPU prints the processes' CPU time per write.
func printCPU(tw io.Writer, res *httpBenchResult) {
	if len(res.CPU) == 0 {
		return
	}
	var parts []string
	var total float64
	for _, c := range res.CPU {
		name := c.Name
		if c.Leader {
			name += " (leader)"
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", name, c.USPerWrite))
		total += c.USPerWrite
	}
	fmt.Fprintf(tw, "cpu per write (µs)\t%s; total %.0f\n", strings.Join(parts, ", "), total)
}

// printWriteStages prints the leader's stage timings and batch shape of
// res, or why there are none.
func printWriteStages(tw io.Writer, res *httpBenchResult) {
	if res.StagesError != "" {
		fmt.Fprintf(tw, "leader's stages\tnone: %s\n", res.StagesError)
		return
	}
	if len(res.Stages) == 0 {
		return
	}
	fmt.Fprintf(tw, "leader's stages\tcount\tmean / p50 / p99 ms (p50 and p99 from histogram buckets)\n")
	for _, st := range res.Stages {
		fmt.Fprintf(tw, "  %s\t%d\t%.3f / %.3f / %.3f\n", st.Name, st.Count, st.MeanMs, st.P50Ms, st.P99Ms)
	}
	if b := res.Batches; b != nil {
		fmt.Fprintf(tw, "log entries written\t%d: mean %.1f operations, %.0f bytes, %.1f batches in flight at sealing\n",
			b.Entries, b.MeanOps, b.MeanBytes, b.MeanInFlight)
	}
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
	// StdClient sends the writes with net/http's client instead of a
	// rawClient.
	StdClient bool
	// Procs are the local cluster's masters, whose CPU time during the run
	// is reported with the bench's own.
	Procs []benchProc
}

// benchProc is a master process whose CPU time the bench measures.
type benchProc struct {
	Name string
	Base string     // its API base URL, to tell the leader
	Pid  func() int // its master's pid now, 0 if none
}

// benchCPU is one process's CPU time during a bench run.
type benchCPU struct {
	Name       string  `json:"name"` // "bench", or the master's name
	Leader     bool    `json:"leader,omitempty"`
	Seconds    float64 `json:"seconds"`      // user and system
	USPerWrite float64 `json:"us_per_write"` // Seconds per acknowledged write
}

// procCPU returns a process's user and system CPU time so far, from
// /proc/<pid>/stat (Linux; elsewhere it fails). The clock tick is
// USER_HZ, 100 on Linux's architectures.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

// parseProcStat returns the user and system CPU time in a /proc/<pid>/stat
// line.
func parseProcStat(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one. utime and stime are fields 14
	// and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// cpuWatch reads the CPU time of the bench and the masters before and
// after the run.
type cpuWatch struct {
	procs  []benchProc
	pids   []int // the bench's, then each of procs'
	before []time.Duration
	ok     []bool
}

// start reads every process's CPU time; a process it cannot read is left
// out of the result.
func (w *cpuWatch) start() {
	w.pids = append(w.pids, os.Getpid())
	for _, p := range w.procs {
		w.pids = append(w.pids, p.Pid())
	}
	for _, pid := range w.pids {
		d, err := procCPU(pid)
		w.before = append(w.before, d)
		w.ok = append(w.ok, err == nil && pid != 0)
	}
}

// result returns each process's CPU time since start, per write too. A
// master whose process changed (restarted) is left out.
func (w *cpuWatch) result(writes int, leader string) []benchCPU {
	var out []benchCPU
	for i, pid := range w.pids {
		if !w.ok[i] || (i > 0 && w.procs[i-1].Pid() != pid) {
			continue
		}
		d, err := procCPU(pid)
		if err != nil {
			continue
		}
		c := benchCPU{Name: "bench", Seconds: (d - w.before[i]).Seconds()}
		if i > 0 {
			c.Name, c.Leader = w.procs[i-1].Name, w.procs[i-1].Base == leader
		}
		if writes > 0 {
			c.USPerWrite = c.Seconds / float64(writes) * 1e6
		}
		out = append(out, c)
	}
	return out
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
	// Stages are the leader's write stages during the run, from its
	// /metrics before and after (regent_registrar_write_stage_seconds, and
	// the HTTP server's time for PUT /master/weights as "http"); Batches
	// the shape of the log entries it wrote. StagesError says why they are
	// missing (the leader changed, an older master).
	Stages []benchStage `json:"stages,omitempty"`
	// CPU is the CPU time of the bench and of the local cluster's masters
	// during the run.
	CPU         []benchCPU    `json:"cpu,omitempty"`
	Batches     *benchBatches `json:"batches,omitempty"`
	StagesError string        `json:"stages_error,omitempty"`
}

// benchStage is one stage of a write on the leader during a bench run.
type benchStage struct {
	Name   string  `json:"name"`
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// benchBatches is the shape of the log entries the leader wrote during a
// bench run.
type benchBatches struct {
	Entries      uint64  `json:"entries"`
	MeanOps      float64 `json:"mean_operations"`
	MeanBytes    float64 `json:"mean_bytes"`
	MeanInFlight float64 `json:"mean_in_flight"`
}

// Metric names scraped from the leader's /metrics.
const (
	metricWriteStage   = "regent_registrar_write_stage_seconds"
	metricBatchOps     = "regent_registrar_batch_operations"
	metricBatchBytes   = "regent_registrar_batch_bytes"
	metricBatchFlight  = "regent_registrar_batches_in_flight"
	metricHTTPDuration = "regent_http_request_duration_seconds"
)

// stageOrder is the order in which a write passes the stages.
var stageOrder = []string{"http", "queue", "slot", "encode", "append", "learn", "apply", "reply"}

// histo is one Prometheus histogram's cumulative state.
type histo struct {
	count  uint64
	sum    float64
	bounds []float64 // upper bounds, ascending
	cum    []uint64  // cumulative counts per bound
}

// sub returns h less an earlier reading of the same histogram.
func (h histo) sub(o histo) histo {
	d := histo{count: h.count - o.count, sum: h.sum - o.sum, bounds: h.bounds, cum: slices.Clone(h.cum)}
	if len(o.cum) == len(h.cum) {
		for i := range d.cum {
			d.cum[i] -= o.cum[i]
		}
	}
	return d
}

// quantile estimates the q-th quantile by linear interpolation within the
// bucket that holds it (as Prometheus's histogram_quantile does); past the
// last finite bound it returns that bound.
func (h histo) quantile(q float64) float64 {
	if h.count == 0 || len(h.bounds) == 0 {
		return 0
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, c := range h.cum {
		if float64(c) >= rank {
			if math.IsInf(h.bounds[i], 1) {
				return lower // past the last finite bound
			}
			in := c - below
			if in == 0 {
				return h.bounds[i]
			}
			return lower + (h.bounds[i]-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = h.bounds[i], c
	}
	return h.bounds[len(h.bounds)-1]
}

// mean returns the histogram's mean, 0 when empty.
func (h histo) mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

func histoOf(m *dto.Metric) histo {
	hp := m.GetHistogram()
	h := histo{count: hp.GetSampleCount(), sum: hp.GetSampleSum()}
	for _, b := range hp.GetBucket() {
		h.bounds = append(h.bounds, b.GetUpperBound())
		h.cum = append(h.cum, b.GetCumulativeCount())
	}
	return h
}

// label returns the value of m's label name.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// writeMetrics reads the write-path histograms from one master's /metrics:
// the stages by name ("http" for PUT /master/weights answered 200) and the
// batch histograms by metric name.
func writeMetrics(ctx context.Context, hc *http.Client, base string) (map[string]histo, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: status %d", base, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s/metrics: %w", base, err)
	}
	out := map[string]histo{}
	for _, m := range fams[metricWriteStage].GetMetric() {
		out[label(m, "stage")] = histoOf(m)
	}
	for _, m := range fams[metricHTTPDuration].GetMetric() {
		if label(m, "handler") == "PUT /master/weights" && label(m, "code") == "200" {
			out["http"] = histoOf(m)
		}
	}
	for _, name := range []string{metricBatchOps, metricBatchBytes, metricBatchFlight} {
		if ms := fams[name].GetMetric(); len(ms) == 1 {
			out[name] = histoOf(ms[0])
		}
	}
	if _, ok := out["queue"]; !ok {
		return nil, fmt.Errorf("GET %s/metrics: no %s (an older master?)", base, metricWriteStage)
	}
	return out, nil
}

// stagesBetween fills res's stages and batches from two readings of the
// leader's write metrics.
func stagesBetween(res *httpBenchResult, before, after map[string]histo) {
	for _, name := range stageOrder {
		a, ok := after[name]
		if !ok {
			continue
		}
		d := a.sub(before[name])
		if d.count == 0 {
			continue
		}
		res.Stages = append(res.Stages, benchStage{
			Name: name, Count: d.count,
			MeanMs: d.mean() * 1e3, P50Ms: d.quantile(0.5) * 1e3, P99Ms: d.quantile(0.99) * 1e3,
		})
	}
	ops := after[metricBatchOps].sub(before[metricBatchOps])
	if ops.count == 0 {
		return
	}
	res.Batches = &benchBatches{
		Entries:      ops.count,
		MeanOps:      ops.mean(),
		MeanBytes:    after[metricBatchBytes].sub(before[metricBatchBytes]).mean(),
		MeanInFlight: after[metricBatchFlight].sub(before[metricBatchFlight]).mean(),
	}
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

// rawClient is one benchmark client's keep-alive HTTP/1.1 connection,
// written and read by the client's goroutine alone. It sends the same
// requests as net/http's client (PUT /master/weights, Content-Type and
// Content-Length, keep-alive) and reads the responses with
// [http.ReadResponse], without the transport's connection pool and its two
// goroutines per connection: on a machine the load generator shares with
// the masters, that leaves them about half of the CPU net/http's client
// takes per request.
type rawClient struct {
	base string // the base URL connected to
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	head []byte // scratch for the request head
	// stop unregisters the watch that cuts the connection when the
	// context it was dialled under is cancelled (Ctrl-C).
	stop func() bool
}

// close drops the connection, if any.
func (c *rawClient) close() {
	if c.conn != nil {
		c.stop()
		c.conn.Close()
		c.conn, c.base, c.stop = nil, "", nil
	}
}

// put sends one PUT /master/weights with body to base, reconnecting when
// base changed or the last exchange failed, and returns the status code
// and Location header. The connection's deadline is ctx's, so a request
// still open when the run ends fails.
func (c *rawClient) put(ctx context.Context, base string, body []byte) (code int, location string, err error) {
	if c.conn == nil || c.base != base {
		c.close()
		u, err := url.Parse(base)
		if err != nil {
			return 0, "", err
		}
		if u.Scheme != "http" {
			return 0, "", fmt.Errorf("%s: only http is supported without -stdclient", base)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80") // as net/http dials it
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return 0, "", err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
		c.base, c.conn = base, conn
		c.br, c.bw = bufio.NewReader(conn), bufio.NewWriter(conn)
		c.head = fmt.Appendf(c.head[:0], "PUT %s/master/weights HTTP/1.1\r\nHost: %s\r\nUser-Agent: regent-bench\r\nContent-Type: application/json\r\nContent-Length: ", strings.TrimSuffix(u.EscapedPath(), "/"), u.Host)
	}
	req := strconv.AppendInt(c.head, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	_, _ = c.bw.Write(req)
	_, _ = c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		c.close()
		return 0, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, resp.Header.Get("Location"), err
}

// putRaw is putWeights over c: it follows one 307 (and remembers the
// leader).
func putRaw(ctx context.Context, c *rawClient, lt *leaderTracker, base string, body []byte) (code int, redirected bool, err error) {
	for hop := 0; ; hop++ {
		code, loc, err := c.put(ctx, base, body)
		if err != nil || code != http.StatusTemporaryRedirect || hop > 0 {
			return code, redirected, err
		}
		redirected = true
		from, err := url.Parse(base)
		if err != nil {
			return code, redirected, err
		}
		if base, err = lt.follow(from, loc); err != nil {
			return code, redirected, err
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
	stagesFrom := lt.get()
	stagesBefore, stagesErr := writeMetrics(ctx, hc, stagesFrom)

	var writes, errs, redirects atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, o.Clients)
	// The bench's own client speaks plain HTTP only.
	stdClient := o.StdClient || strings.HasPrefix(o.Base, "https://")
	cpu := &cpuWatch{procs: o.Procs}
	cpu.start()
	start := time.Now()
	end := start.Add(o.Duration)
	bctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { watch.run(bctx, time.Second) })
	for i := range o.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			var rc rawClient
			defer rc.close()
			for bctx.Err() == nil {
				body := fmt.Appendf(nil, `[{"role":"role-%d","weight":%d.%d}]`, rng.IntN(o.Roles), 1+rng.IntN(9), rng.IntN(10))
				t0 := time.Now()
				var (
					code int
					red  bool
					err  error
				)
				if stdClient {
					code, red, err = putWeights(bctx, hc, lt, lt.get(), body)
				} else {
					code, red, err = putRaw(bctx, &rc, lt, lt.get(), body)
				}
				if red {
					redirects.Add(1)
				}
				if bctx.Err() != nil || (err != nil && !time.Now().Before(end)) {
					// The run ended mid-request: neither a write nor an
					// error. (A raw client's connection has the run's
					// deadline, which may fire before bctx's.)
					return
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
	cpuUsed := cpu.result(int(writes.Load()), lt.get())
	watch.sample(ctx)
	changes, restarts := watch.result()
	var stagesAfter map[string]histo
	if stagesErr == nil {
		stagesAfter, stagesErr = writeMetrics(ctx, hc, stagesFrom)
	}
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

		CPU:            cpuUsed,
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
	switch {
	case stagesErr != nil:
		res.StagesError = stagesErr.Error()
	case lt.get() != stagesFrom || changes != 0:
		res.StagesError = "the leader changed during the run"
	default:
		stagesBetween(res, stagesBefore, stagesAfter)
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
