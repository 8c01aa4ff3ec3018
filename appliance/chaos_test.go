package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/master"
)

// The chaos harness (docs/reliability.md): real "regent run" appliances,
// clients recording every call, a seeded nemesis, and checks at the end.
//
//	go test -run TestChaos ./appliance -chaos.seed=7 -chaos.duration=60s -chaos.masters=3 [-chaos.netns]
var (
	chaosSeed     = flag.Int64("chaos.seed", 0, "first seed of the chaos runs (0: drawn from the clock and printed)")
	chaosSeeds    = flag.Int("chaos.seeds", 1, "number of chaos runs, with seeds seed, seed+1, …")
	chaosDuration = flag.Duration("chaos.duration", 45*time.Second, "length of each chaos run's fault period")
	chaosMasters  = flag.Int("chaos.masters", 3, "masters in the chaos cluster (3 or 5)")
	chaosNetns    = flag.Bool("chaos.netns", false, "run each master in its own network namespace and add network faults (needs root, ip and nft)")
	chaosFaults   = flag.String("chaos.faults", "", "faults to inject: process, network, all, or a list of "+faultNameList()+" (default: process; all with -chaos.netns)")
	chaosClients  = flag.Int("chaos.clients", 2, "clients per master")
	chaosInterval = flag.Duration("chaos.interval", 20*time.Millisecond, "pause between one client's calls")
	chaosRecovery = flag.Duration("chaos.recovery", 30*time.Second, "bound on the time the cluster takes to serve again once faults stop")
	chaosOut      = flag.String("chaos.out", "_chaos", "directory for the history, schedule, logs and porcupine visualisation of failed runs")
	chaosBinary   = flag.String("chaos.binary", "", "regent binary to run (default: built from this tree)")
	chaosKeep     = flag.Bool("chaos.keep", false, "keep the history and logs of passing runs too")
	chaosVisual   = flag.Int("chaos.visualize", 30000, "most operations whose porcupine visualisation a run writes (it takes memory growing with their square)")
)

// chaosCluster is the cluster of one chaos run: appliances on loopback, or
// each in its own network namespace.
type chaosCluster struct {
	lc    *localCluster
	net   *chaosNet   // nil on loopback
	disks *chaosDisks // the tmpfs work_dirs (disk-full); nil if on the test's disk
	ms    []*localMaster
	hosts []string // each master's API host
}

// addr returns master i's API host:port.
func (cc *chaosCluster) addr(i int) string {
	return net.JoinHostPort(cc.hosts[i], strconv.Itoa(cc.ms[i].APIPort))
}

// url returns master i's API base URL.
func (cc *chaosCluster) url(i int) string { return "http://" + cc.addr(i) }

// start starts master i's appliance, in its namespace if there is one.
func (cc *chaosCluster) start(i int) error {
	if cc.net != nil {
		return cc.lc.startInNetns(cc.ms[i], cc.net.ns[i])
	}
	return cc.lc.Start(cc.ms[i])
}

// askLeader asks master i who leads; ok is false if it does not know or
// does not answer.
func (cc *chaosCluster) askLeader(ctx context.Context, i int) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cc.url(i)+"/master/redirect", nil)
	if err != nil {
		return 0, false
	}
	resp, err := noRedirectClient.Do(req)
	if err != nil {
		return 0, false
	}
	resp.Body.Close()
	loc := strings.TrimPrefix(resp.Header.Get("Location"), "//")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		return 0, false
	}
	for j := range cc.ms {
		if loc == cc.addr(j) {
			return j, true
		}
	}
	return 0, false
}

// leader returns the leader as the first running master that knows names it.
func (cc *chaosCluster) leader(ctx context.Context) (int, bool) {
	for i, m := range cc.ms {
		if m.Pid() == 0 {
			continue
		}
		if l, ok := cc.askLeader(ctx, i); ok {
			return l, true
		}
	}
	return 0, false
}

// waitLeader polls until every running master names the same running
// leader, or ctx ends.
func (cc *chaosCluster) waitLeader(ctx context.Context) (int, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		votes := map[int]int{}
		running := 0
		for i, m := range cc.ms {
			if m.Pid() == 0 {
				continue
			}
			running++
			if l, ok := cc.askLeader(ctx, i); ok && cc.ms[l].Pid() != 0 {
				votes[l]++
			}
		}
		for l, n := range votes {
			if len(votes) == 1 && n == running {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for a leader: %w (votes %v of %d running)", ctx.Err(), votes, running)
		case <-tick.C:
		}
	}
}

// registries returns every master's GET /registrar(1)/registry, decoded; a
// master that does not answer has a nil entry.
func (cc *chaosCluster) registries(ctx context.Context) []any {
	out := make([]any, len(cc.ms))
	for i := range cc.ms {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cc.url(i)+"/registrar(1)/registry", nil)
		if err == nil {
			if resp, err := noRedirectClient.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var v any
				if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &v) == nil {
					out[i] = v
				}
			}
		}
		cancel()
	}
	return out
}

// stopAll resumes paused appliances and stops every one.
func (cc *chaosCluster) stopAll() error {
	for _, m := range cc.ms {
		_ = m.SignalGroup(syscall.SIGCONT)
	}
	return cc.lc.StopAll(20 * time.Second)
}

// chaosConfig is one chaos run's settings.
type chaosConfig struct {
	Seed     int64
	Duration time.Duration
	Masters  int
	Netns    bool
	Kinds    []faultKind
	Clients  int // per master
	Interval time.Duration
	Recovery time.Duration
}

// chaosResult is one chaos run's outcome, a row of the summary table.
type chaosResult struct {
	Seed     int64
	Ops      int
	Acked    int
	Unknown  int
	Failed   int
	Faults   int
	Recovery time.Duration // -1: did not recover within the bound
	// WriteGap is the longest time without an acknowledged write.
	WriteGap time.Duration
	// Elections counts coordinators elected during the run; Quiet those
	// after the last fault healed.
	Elections int
	Quiet     int
	Linear    porcupine.CheckResult
	// Leaderships counts the epochs that answered; Stale the calls
	// answered under a deposed one (checkStaleReads), -1 if the binary
	// names no epochs.
	Leaderships int
	Stale       int
	// LogPairs counts the pairs of VOTING replicas whose learned entries
	// were compared at the end; LogCompared is the fewest positions a pair
	// compared (checkChaosLogs). Both zero if no pair was compared.
	LogPairs    int
	LogCompared int
	Problems    []string
	Revived     []string
	OutDir      string // where the run's files are, if written
	Schedule    []fault
	Records     []faultRecord
}

// verdict is "ok" or "FAIL".
func (r *chaosResult) verdict() string {
	if len(r.Problems) == 0 {
		return "ok"
	}
	return "FAIL"
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run: skipped with -short")
	}
	cfg := chaosConfig{
		Duration: *chaosDuration,
		Masters:  *chaosMasters,
		Netns:    *chaosNetns,
		Clients:  *chaosClients,
		Interval: *chaosInterval,
		Recovery: *chaosRecovery,
	}
	if cfg.Masters < 1 || cfg.Masters%2 == 0 {
		t.Fatalf("-chaos.masters=%d: want an odd number", cfg.Masters)
	}
	faults := *chaosFaults
	if faults == "" {
		faults = "process"
		if cfg.Netns {
			faults = "all"
		}
	}
	kinds, err := parseFaultKinds(faults)
	if err != nil {
		t.Fatalf("-chaos.faults: %v", err)
	}
	if !cfg.Netns && slices.ContainsFunc(kinds, faultKind.network) {
		t.Fatalf("-chaos.faults=%s: network faults need -chaos.netns", faults)
	}
	if cfg.Netns {
		if why := chaosNetAvailable(); why != "" {
			t.Skipf("-chaos.netns: %s", why)
		}
	}
	cfg.Kinds = kinds
	bin := *chaosBinary
	if bin == "" {
		bin = buildRegent(t)
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = time.Now().UnixNano()%1_000_000 + 1
	}
	var results []*chaosResult
	for i := range max(*chaosSeeds, 1) {
		c := cfg
		c.Seed = seed + int64(i)
		t.Run("seed="+strconv.FormatInt(c.Seed, 10), func(t *testing.T) {
			r := runChaos(t, bin, c)
			results = append(results, r)
			for _, p := range r.Problems {
				t.Error(p)
			}
			if len(r.Problems) > 0 {
				t.Logf("reproduce: go test -count=1 -run 'TestChaos$' ./appliance -chaos.seed=%d -chaos.duration=%v -chaos.masters=%d -chaos.faults=%s%s",
					c.Seed, c.Duration, c.Masters, faults, map[bool]string{true: " -chaos.netns"}[c.Netns])
			}
		})
	}
	t.Logf("chaos summary (%d masters, %v each, faults %s, %s):\n%s", cfg.Masters, cfg.Duration, faults,
		map[bool]string{true: "network namespaces", false: "loopback"}[cfg.Netns], summaryTable(results))
}

// summaryTable renders one row per run.
func summaryTable(rs []*chaosResult) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seed\toperations\tacknowledged\tunknown\tfailed\tfaults\trecovery\twrite gap\telections\tquiet elections\tleaderships\tstale\tlinearizable\tlogs compared\tverdict\t")
	for _, r := range rs {
		rec := "never"
		if r.Recovery >= 0 {
			rec = r.Recovery.Round(time.Millisecond).String()
		}
		stale := "n/a"
		if r.Stale >= 0 {
			stale = strconv.Itoa(r.Stale)
		}
		logs := "n/a"
		if r.LogPairs > 0 {
			logs = fmt.Sprintf("%d pairs, ≥%d", r.LogPairs, r.LogCompared)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", r.Seed, r.Ops, r.Acked, r.Unknown, r.Failed, r.Faults, rec,
			r.WriteGap.Round(time.Millisecond), r.Elections, r.Quiet, r.Leaderships, stale, r.Linear, logs, r.verdict())
	}
	tw.Flush()
	return b.String()
}

// runChaos performs one chaos run and checks it.
func runChaos(t *testing.T, bin string, cfg chaosConfig) *chaosResult {
	res := &chaosResult{Seed: cfg.Seed, Recovery: -1}
	res.Schedule = chaosSchedule(cfg.Seed, cfg.Duration, cfg.Masters, cfg.Kinds)
	t.Logf("chaos seed %d: %d masters, %v, %s; schedule:\n%s", cfg.Seed, cfg.Masters, cfg.Duration,
		map[bool]string{true: "network namespaces", false: "loopback"}[cfg.Netns], formatSchedule(res.Schedule))

	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "cluster.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	lc := &localCluster{Binary: bin, Dir: dir, Cluster: "chaos", Output: logFile}
	ms, err := lc.Add(cfg.Masters, cfg.Masters/2+1)
	if err != nil {
		t.Fatal(err)
	}
	cc := &chaosCluster{lc: lc, ms: ms}
	for range ms {
		cc.hosts = append(cc.hosts, "127.0.0.1")
	}
	if slices.Contains(cfg.Kinds, faultDiskFull) {
		setupChaosDisks(t, cc)
	}
	if cfg.Netns {
		if removed, err := cleanupChaosLeftovers(); err != nil {
			t.Fatalf("clean up leftovers of earlier runs: %v", err)
		} else if len(removed) > 0 {
			t.Logf("removed leftovers of earlier runs: %s", strings.Join(removed, ", "))
		}
		cn, err := setupChaosNet(cfg.Masters)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := cn.Close(); err != nil {
				t.Errorf("remove chaos network: %v", err)
			}
		})
		cc.net = cn
		var peers []string
		for i, m := range ms {
			cc.hosts[i] = cn.IP(i)
			peers = append(peers, net.JoinHostPort(cn.IP(i), strconv.Itoa(m.PeerPort)))
		}
		for i, m := range ms {
			if err := lc.writeNetnsConfig(m, cn.IP(i), peers); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		if err := cc.stopAll(); err != nil {
			t.Logf("stop cluster: %v", err)
		}
	})
	for i := range ms {
		if err := cc.start(i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	l, err := cc.waitLeader(wctx)
	cancel()
	if err != nil {
		t.Fatalf("no leader before the faults: %v\n%s", err, tailLogs(ms, 30))
	}
	t.Logf("leader m%d; clients start", l+1)

	// Clients.
	hist := newChaosHistory()
	wl := defaultChaosWorkload(cfg.Interval, cfg.Duration)
	cctx, stopClients := context.WithCancel(ctx)
	var wg sync.WaitGroup
	id := 0
	for i := range ms {
		for range cfg.Clients {
			c := &chaosClient{ID: id, Base: cc.url(i), HTTP: newChaosHTTPClient(), Timeout: 3 * time.Second, MaxHops: 4, Hist: hist}
			rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(id)))
			wg.Go(func() { c.run(cctx, rng, wl) })
			id++
		}
	}
	defer func() {
		stopClients()
		wg.Wait()
	}()

	// Faults.
	nem := &nemesis{cc: cc, hist: hist, logf: t.Logf}
	nemErr := nem.run(ctx, res.Schedule)
	healed := hist.now()
	if nemErr != nil {
		res.Problems = append(res.Problems, "nemesis: "+nemErr.Error())
	}

	// Recovery: the first acknowledged write invoked after the last heal.
	recovered := pollUntil(ctx, cfg.Recovery, func() bool {
		for _, op := range hist.snapshot() {
			if op.Kind == chaosWrite && op.Outcome == chaosOK && op.Call >= healed {
				res.Recovery = time.Duration(op.Return - healed)
				return true
			}
		}
		nem.reviveExited()
		return false
	})
	if !recovered {
		res.Problems = append(res.Problems, fmt.Sprintf("no write acknowledged within %v after the last fault healed", cfg.Recovery))
	}
	// A little quiet traffic, then stop the clients.
	hold(ctx, 2*time.Second)
	stopClients()
	wg.Wait()

	// The final read, from the leader.
	wctx, cancel = context.WithTimeout(ctx, cfg.Recovery)
	final, err := cc.waitLeader(wctx)
	cancel()
	if err != nil {
		res.Problems = append(res.Problems, "no leader once quiet: "+err.Error())
	} else {
		fc := &chaosClient{ID: id, Base: cc.url(final), HTTP: newChaosHTTPClient(), Timeout: 10 * time.Second, MaxHops: 1, Hist: hist}
		if op := fc.readAll(ctx); op.Outcome != chaosOK {
			res.Problems = append(res.Problems, fmt.Sprintf("final read of the %s on the leader m%d failed: %s", op.Target, final+1, op.Err))
		}
	}

	// Every master holds the same registry once quiet.
	var regs []any
	same := pollUntil(ctx, 30*time.Second, func() bool {
		regs = cc.registries(ctx)
		for _, r := range regs {
			if r == nil || !cmp.Equal(r, regs[0]) {
				return false
			}
		}
		return true
	})
	if !same {
		var diffs []string
		for i := 1; i < len(regs); i++ {
			if d := cmp.Diff(regs[0], regs[i]); d != "" {
				diffs = append(diffs, fmt.Sprintf("m1 vs m%d (-m1 +m%d):\n%s", i+1, i+1, truncate(d, 3000)))
			}
		}
		res.Problems = append(res.Problems, "masters' registries differ 30 s after the clients stopped:\n"+strings.Join(diffs, "\n"))
	}

	// Every VOTING replica holds the same learned entries: stop every
	// appliance cleanly and read the replicas offline (checkChaosLogs).
	logStart := time.Now()
	if err := cc.stopAll(); err != nil {
		res.Problems = append(res.Problems, "stop the appliances for the log check: "+err.Error())
	}
	logs, pairs, logProblems := checkChaosLogs(ms)
	res.Problems = append(res.Problems, logProblems...)
	if len(pairs) > 0 {
		res.LogPairs, res.LogCompared = len(pairs), pairs[0].Compared
		for _, p := range pairs {
			res.LogCompared = min(res.LogCompared, p.Compared)
		}
	}
	t.Logf("replicas' learned entries (appliances stopped and replicas read in %v):\n%s", time.Since(logStart).Round(time.Millisecond), formatLogPairs(logs, pairs))

	// The history.
	ops := hist.snapshot()
	res.Ops = len(ops)
	for _, op := range ops {
		switch op.Outcome {
		case chaosOK:
			res.Acked++
		case chaosUnknown:
			res.Unknown++
		case chaosFailed:
			res.Failed++
		}
		if op.Outcome == chaosFailed && strings.HasPrefix(op.Err, "400") {
			res.Problems = append(res.Problems, fmt.Sprintf("client %d: %s refused: %s", op.Client, op.Kind, op.Err))
		}
	}
	nem.mu.Lock()
	res.Records, res.Revived = nem.records, nem.revived
	nem.mu.Unlock()
	res.Faults = len(res.Records)
	res.WriteGap = longestWriteGap(ops)
	res.Elections, res.Quiet = countElections(logFile.Name(), hist.start.Add(time.Duration(healed)))

	model := chaosModel()
	checkStart := time.Now()
	lin, checked := checkChaosHistory(ops, 2*time.Minute)
	res.Linear = lin
	t.Logf("porcupine: %s on %d operations in %v", lin, len(checked), time.Since(checkStart).Round(time.Millisecond))
	switch lin {
	case porcupine.Illegal:
		res.Problems = append(res.Problems, "history is not linearizable (see porcupine.html)")
	case porcupine.Unknown:
		res.Problems = append(res.Problems, "linearizability check timed out")
	}
	t.Logf("ledger: %d writes issued (budget %d over %v)", hist.ledgerIssued(), wl.LedgerBudget, wl.LedgerSpan)
	if bad := checkLedger(ops, 20); len(bad) > 0 {
		res.Problems = append(res.Problems, "ledger: "+strings.Join(bad, "\n  "))
	}
	sc := checkStaleReads(ops, 20)
	res.Leaderships, res.Stale = sc.Epochs, sc.Stale
	if sc.Skipped {
		res.Stale = -1
		t.Logf("stale-read check skipped: the masters name no leadership epoch (a binary older than the %s header)", master.LeaderEpochHeader)
	}
	if len(sc.Problems) > 0 {
		res.Problems = append(res.Problems, "leadership epochs: "+strings.Join(sc.Problems, "\n  "))
	}

	t.Logf("faults injected:\n%s", formatRecords(res.Records))
	if len(res.Revived) > 0 {
		t.Logf("appliances that exited by themselves:\n  %s", strings.Join(res.Revived, "\n  "))
	}
	t.Logf("seed %d:\n%s", cfg.Seed, summaryTable([]*chaosResult{res}))

	if len(res.Problems) > 0 || *chaosKeep {
		var info *porcupine.LinearizationInfo
		if len(checked) <= *chaosVisual {
			_, li := porcupine.CheckOperationsVerbose(model, checked, 2*time.Minute)
			info = &li
		} else {
			t.Logf("no porcupine.html: %d operations, more than -chaos.visualize=%d", len(checked), *chaosVisual)
		}
		out, err := writeChaosFiles(*chaosOut, cfg, res, ops, logFile.Name(), model, info)
		if err != nil {
			t.Errorf("write chaos files: %v", err)
		} else {
			res.OutDir = out
			t.Logf("history, schedule, logs and porcupine.html in %s", out)
		}
	}
	return res
}

// longestWriteGap returns the longest time between two successive
// acknowledged writes' completions.
func longestWriteGap(ops []chaosOp) time.Duration {
	var ends []int64
	for _, op := range ops {
		if op.Kind == chaosWrite && op.Outcome == chaosOK {
			ends = append(ends, op.Return)
		}
	}
	slices.Sort(ends)
	var gap int64
	for i := 1; i < len(ends); i++ {
		gap = max(gap, ends[i]-ends[i-1])
	}
	return time.Duration(gap)
}

// countElections counts the "elected coordinator" lines in a cluster log,
// and those logged after quiet.
func countElections(path string, quiet time.Time) (all, after int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		_, js, ok := strings.Cut(line, "| ")
		if !ok || !strings.Contains(js, `"elected coordinator"`) {
			continue
		}
		var rec struct {
			Message string    `json:"@message"`
			Time    time.Time `json:"@timestamp"`
		}
		if json.Unmarshal([]byte(js), &rec) != nil || rec.Message != "elected coordinator" {
			continue
		}
		all++
		if rec.Time.After(quiet) {
			after++
		}
	}
	return all, after
}

// pollUntil calls cond every 100 ms until it holds or d passes. Polling a
// real cluster, not synchronising our own goroutines.
func pollUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func formatRecords(rs []faultRecord) string {
	if len(rs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s–%s  %s → %v %s\n", fmtNanos(r.Start), fmtNanos(r.End), r.Fault, names(r.Targets), r.Note)
	}
	return strings.TrimRight(b.String(), "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func tailLogs(ms []*localMaster, n int) string {
	var b strings.Builder
	for _, m := range ms {
		lines := m.Logs()
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", m.Name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// writeChaosFiles writes a run's schedule, faults, history, the cluster's
// log and porcupine's visualisation (if info is not nil) under
// out/<seed>/.
func writeChaosFiles(out string, cfg chaosConfig, res *chaosResult, ops []chaosOp, clusterLog string, model porcupine.Model, info *porcupine.LinearizationInfo) (string, error) {
	dir, err := filepath.Abs(filepath.Join(out, strconv.FormatInt(cfg.Seed, 10)))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "seed %d, %d masters, %v, netns %v, faults %v\n\nschedule:\n%s\nfaults injected:\n%s\n\n%s\nproblems:\n",
		cfg.Seed, cfg.Masters, cfg.Duration, cfg.Netns, cfg.Kinds, formatSchedule(res.Schedule), formatRecords(res.Records), summaryTable([]*chaosResult{res}))
	for _, p := range res.Problems {
		sum.WriteString("- " + p + "\n")
	}
	for _, r := range res.Revived {
		sum.WriteString("appliance exit: " + r + "\n")
	}
	hj, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return "", err
	}
	logs, err := os.ReadFile(clusterLog)
	if err != nil {
		return "", err
	}
	for name, b := range map[string][]byte{"summary.txt": []byte(sum.String()), "history.json": hj, "cluster.log": logs} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", err
		}
	}
	if info != nil {
		if err := porcupine.VisualizePath(model, *info, filepath.Join(dir, "porcupine.html")); err != nil {
			return "", fmt.Errorf("visualise: %w", err)
		}
	}
	return dir, nil
}

func TestChaosWriteFiles(t *testing.T) {
	t.Parallel()
	ops := []chaosOp{
		{Client: 0, Kind: chaosWrite, Role: "r0", Weight: 1, Call: 0, Return: 10, Outcome: chaosOK},
		{Client: 0, Kind: chaosWrite, Role: "r0", Weight: 2, Call: 20, Return: 30, Outcome: chaosOK},
		{Client: 1, Kind: chaosRead, Call: 40, Return: 50, Outcome: chaosOK, Weights: map[string]float64{"r0": 1}},
	}
	model := chaosModel()
	lin, info := porcupine.CheckOperationsVerbose(model, porcupineHistory(ops), time.Minute)
	if lin != porcupine.Illegal {
		t.Fatalf("stale read: got %s, want %s", lin, porcupine.Illegal)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "cluster.log")
	if err := os.WriteFile(logPath, []byte("m1  | a log line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := chaosConfig{Seed: 42, Duration: 45 * time.Second, Masters: 3, Kinds: processFaults}
	res := &chaosResult{Seed: 42, Schedule: chaosSchedule(42, 45*time.Second, 3, processFaults), Problems: []string{"history is not linearizable"}, Linear: lin}
	out, err := writeChaosFiles(filepath.Join(dir, "_chaos"), cfg, res, ops, logPath, model, &info)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "_chaos", "42"); out != want {
		t.Errorf("got directory %s, want %s", out, want)
	}
	for name, want := range map[string]string{
		"summary.txt":    "history is not linearizable",
		"history.json":   `"weights"`,
		"cluster.log":    "a log line",
		"porcupine.html": "<html",
	} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: got %d bytes without %q", name, len(b), want)
		}
	}
	var back []chaosOp
	b, _ := os.ReadFile(filepath.Join(out, "history.json"))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("history.json: %v", err)
	}
	if diff := cmp.Diff(ops, back); diff != "" {
		t.Errorf("history.json round trip (-want +got):\n%s", diff)
	}
}

func TestChaosRunFigures(t *testing.T) {
	t.Parallel()
	ops := []chaosOp{
		{Kind: chaosWrite, Outcome: chaosOK, Return: int64(1 * time.Second)},
		{Kind: chaosWrite, Outcome: chaosUnknown, Return: int64(2 * time.Second)},
		{Kind: chaosRead, Outcome: chaosOK, Return: int64(3 * time.Second)},
		{Kind: chaosWrite, Outcome: chaosOK, Return: int64(5 * time.Second)},
		{Kind: chaosWrite, Outcome: chaosOK, Return: int64(6 * time.Second)},
	}
	if got, want := longestWriteGap(ops), 4*time.Second; got != want {
		t.Errorf("longestWriteGap: got %v, want %v", got, want)
	}
	log := strings.Join([]string{
		`m1  | {"@message":"elected coordinator","@timestamp":"2026-01-01T10:00:01Z"}`,
		`m2  | {"@message":"child started","@timestamp":"2026-01-01T10:00:02Z"}`,
		`m2  | {"@message":"elected coordinator","@timestamp":"2026-01-01T10:00:05Z"}`,
		`m3  | not json "elected coordinator"`,
		`m3  | {"@message":"elected coordinator","@timestamp":"2026-01-01T10:00:09Z"}`,
	}, "\n")
	path := filepath.Join(t.TempDir(), "cluster.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	all, after := countElections(path, time.Date(2026, 1, 1, 10, 0, 4, 0, time.UTC))
	if all != 3 || after != 2 {
		t.Errorf("countElections: got %d, %d after; want 3, 2 after", all, after)
	}
}
