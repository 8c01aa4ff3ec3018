package appliance

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer"
)

// logCluster is an N-replica replicated log in one process, as "regent log
// bench" runs it: each replica on a real Badger store in its own directory,
// with a real gRPC peer transport on loopback and real fsyncs. The timing is
// a master's (logTickInterval, logHeartbeatTicks, logLeaseTicks).
//
// Goroutines: per running replica, the node's Run and the transport's Serve
// (plus their own); stopReplica and Close end and wait for them.
type logCluster struct {
	dir     string
	log     hclog.Logger
	window  int                 // the core's window; 0 = the master's (the core's default)
	store   badgerstore.Options // options of every replica's store; zero = a master's
	masters []string            // peer addresses, one per replica
	quorum  int
	stages  *stageClock // times the stages of each append; nil = not timed

	replicas []*logReplica
}

// logReplica is one replica of a logCluster and its counters.
type logReplica struct {
	addr  string
	dir   string
	store *countingStore
	node  *replog.Node
	tr    *countingTransport
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// countingStore counts the synced Saves of a replog.Storage: each is one
// fsync (Badger's SyncWrites msyncs its write-ahead log once per commit).
type countingStore struct {
	replog.Storage
	syncs    atomic.Uint64
	syncTime atomic.Int64 // nanoseconds spent in synced saves
	stages   *stageClock
	replica  int // index in the cluster, for stages
}

// Save implements replog.Storage.
func (s *countingStore) Save(b replog.Batch) error {
	if !b.Sync && s.stages == nil {
		return s.Storage.Save(b)
	}
	t0 := time.Now()
	err := s.Storage.Save(b)
	t1 := time.Now()
	s.stages.markSave(s.replica, b, t0, t1)
	if b.Sync {
		s.syncTime.Add(int64(t1.Sub(t0)))
		s.syncs.Add(1)
	}
	return err
}

// countingTransport counts the write requests a replica sends and the
// positions they carry: positions per write message is the batch size the
// coordinator achieves.
type countingTransport struct {
	replog.Transport
	writes    atomic.Uint64
	positions atomic.Uint64
	// catchupRequests counts the catch-up requests sent, catchupPositions
	// the positions sent in catch-up answers.
	catchupRequests  atomic.Uint64
	catchupPositions atomic.Uint64
	stages           *stageClock
	replica          int // index in the cluster, for stages
}

// Send implements replog.Transport.
func (t *countingTransport) Send(msgs []paxos.Message) {
	t.stages.markMessages(t.replica, true, msgs)
	for _, m := range msgs {
		switch m.Type {
		case paxos.MsgWriteRequest:
			t.writes.Add(1)
			t.positions.Add(uint64(len(m.Actions)))
		case paxos.MsgCatchupRequest:
			t.catchupRequests.Add(1)
		case paxos.MsgCatchupResponse:
			t.catchupPositions.Add(uint64(len(m.Actions)))
		}
	}
	t.Transport.Send(msgs)
}

// newLogCluster reserves n loopback peer addresses and returns a cluster
// whose replicas keep their stores under dir. No replica is started.
func newLogCluster(dir string, n int, log hclog.Logger) (*logCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("new log cluster: %d replicas", n)
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, fmt.Errorf("new log cluster: %w", err)
	}
	var masters []string
	for _, p := range ports {
		masters = append(masters, "127.0.0.1:"+strconv.Itoa(p))
	}
	return newLogClusterAt(dir, masters, log), nil
}

// newLogClusterAt returns a cluster of one replica per address in masters,
// replica i keeping its store under dir/r<i+1>. No replica is started.
func newLogClusterAt(dir string, masters []string, log hclog.Logger) *logCluster {
	c := &logCluster{dir: dir, log: log, quorum: len(masters)/2 + 1}
	for i, addr := range masters {
		c.masters = append(c.masters, addr)
		c.replicas = append(c.replicas, &logReplica{
			addr: addr,
			dir:  filepath.Join(dir, "r"+strconv.Itoa(i+1), ReplicatedLogDir),
		})
	}
	return c
}

// startReplica opens replica i's store and starts its node and transport.
// Every goroutine they start carries the profiler label replica=r<i+1>, so a
// CPU profile splits by replica (go tool pprof -tagfocus replica=r3).
func (c *logCluster) startReplica(i int) (err error) {
	pprof.Do(context.Background(), pprof.Labels("replica", "r"+strconv.Itoa(i+1)), func(context.Context) {
		err = c.startReplicaLabelled(i)
	})
	return err
}

// startReplicaLabelled is startReplica, called with the replica's labels.
func (c *logCluster) startReplicaLabelled(i int) error {
	r := c.replicas[i]
	if r.node != nil {
		return fmt.Errorf("start replica %d: already running", i+1)
	}
	so := c.store
	so.Logger = c.log
	st, err := badgerstore.Open(r.dir, so)
	if err != nil {
		return fmt.Errorf("start replica %d: %w", i+1, err)
	}
	cs := &countingStore{Storage: st, stages: c.stages, replica: i}
	node, err := replog.New(replog.Config{
		Logger:         c.log,
		Addr:           r.addr,
		Masters:        c.masters,
		Quorum:         c.quorum,
		AutoInitialize: true,
		TickInterval:   logTickInterval,
		HeartbeatTicks: logHeartbeatTicks,
		LeaseTicks:     logLeaseTicks,
		Window:         c.window,
	}, cs)
	if err != nil {
		st.Close()
		return fmt.Errorf("start replica %d: %w", i+1, err)
	}
	handler := node.Step
	if c.stages != nil && i < 3 {
		handler = func(m paxos.Message) {
			c.stages.markMessages(i, false, []paxos.Message{m})
			node.Step(m)
		}
	}
	var peers []string
	for _, a := range c.masters {
		if a != r.addr {
			peers = append(peers, a)
		}
	}
	pt, err := peer.New(peer.Config{
		Logger:        c.log,
		Self:          node.Self,
		AdvertiseAddr: r.addr,
		Peers:         peers,
		Handler:       handler,
		Allow:         node.Allow,
		// Reconnect fast: a restarted replica is dialled again at once.
		BackoffInitial: 10 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("start replica %d: %w", i+1, err)
	}
	ln, err := listenRetry(r.addr)
	if err != nil {
		pt.Close()
		st.Close()
		return fmt.Errorf("start replica %d: %w", i+1, err)
	}
	r.store = cs
	r.node = node
	r.tr = &countingTransport{Transport: pt, stages: c.stages, replica: i}
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.wg.Go(func() { _ = pt.Serve(ln) })
	r.wg.Go(func() {
		if err := node.Run(ctx, r.tr); err != nil {
			c.log.Error("replica failed", "replica", node.ID(), "error", err)
		}
	})
	return nil
}

// listenRetry listens on addr, retrying for a moment: a replica restarted on
// its old port may find the previous listener's socket still closing.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("listen on %s: %w", addr, err)
			}
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopReplica stops replica i's node and transport and closes its store.
func (c *logCluster) stopReplica(i int) error {
	r := c.replicas[i]
	if r.node == nil {
		return nil
	}
	r.stop()
	_ = r.node.Close()
	_ = r.tr.Close()
	r.wg.Wait()
	err := r.store.Storage.Close()
	r.node, r.tr, r.store = nil, nil, nil
	if err != nil {
		return fmt.Errorf("stop replica %d: %w", i+1, err)
	}
	return nil
}

// wipeReplica deletes replica i's store (it must be stopped): it comes back
// EMPTY with a new ReplicaID, as a replaced master does.
func (c *logCluster) wipeReplica(i int) error {
	if c.replicas[i].node != nil {
		return fmt.Errorf("wipe replica %d: still running", i+1)
	}
	if err := os.RemoveAll(c.replicas[i].dir); err != nil {
		return fmt.Errorf("wipe replica %d: %w", i+1, err)
	}
	return nil
}

// Close stops every replica.
func (c *logCluster) Close() error {
	var errs []error
	for i := range c.replicas {
		errs = append(errs, c.stopReplica(i))
	}
	return errors.Join(errs...)
}

// elect makes replica i the coordinator, retrying while the log initialises
// and the peers connect, until ctx ends.
func (c *logCluster) elect(ctx context.Context, i int) error {
	n := c.replicas[i].node
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.Elect(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("elect replica %d: %w (last: %w)", i+1, ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // waiting on other replicas' progress, not our own
		}
	}
}

// waitVoting waits until replica i is VOTING and has learned every position
// below to, polling its status, or until ctx ends.
func (c *logCluster) waitVoting(ctx context.Context, i int, to paxos.Position) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		s := c.replicas[i].node.Status()
		if s.ReplicaStatus == paxos.StatusVoting && s.LearnedTo >= to {
			return nil
		}
		if s.Err != nil {
			return fmt.Errorf("replica %d: %w", i+1, s.Err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for replica %d to vote (status %v, learned to %d of %d): %w",
				i+1, s.ReplicaStatus, s.LearnedTo, to, ctx.Err())
		case <-t.C:
		}
	}
}

// logBenchOptions configures runLogBench.
type logBenchOptions struct {
	Replicas int
	Size     int           // bytes per entry
	Writers  int           // concurrent appenders
	Duration time.Duration // how long to append, when Count is 0
	Count    int           // appends in all, if non-zero
	Catchup  int           // positions written with one replica down, then its catch-up timed
	Window   int           // the core's window; 0 = the master's
	MemTable int64         // Badger's memtable size; 0 = the master's
	Dir      string        // stores go under it
	Logger   hclog.Logger
	AtEnd    func() error // called while the cluster still runs, after the measurements (a heap profile)
	Trace    io.Writer    // if set, receives a runtime execution trace of the appends only
	// TruncateEvery, if positive, has the coordinator append a snapshot and
	// truncate the log below it each time that many positions were
	// learned since the last truncation, as a master does (truncateLoop).
	TruncateEvery int
	// Processes runs each replica in a process of its own (see
	// runLogBenchProcesses), Binary (default: this executable) with the
	// hidden "regent log bench-replica". The children write their logs, at
	// ChildLogLevel, to ChildStderr (default os.Stderr), and, if set, heap
	// and CPU profiles to ChildMemProfile and ChildCPUProfile plus ".r<replica>".
	Processes       bool
	Binary          string
	ChildStderr     io.Writer
	ChildLogLevel   string
	ChildMemProfile string
	ChildCPUProfile string
	// CatchupCPU, if set, receives a CPU profile of the catch-up only
	// (from the wiped replica's start until it votes): sender and
	// receiver, since every replica runs in this process.
	CatchupCPU io.Writer
}

func (o *logBenchOptions) validate() error {
	var errs []error
	if o.Replicas < 1 || o.Replicas > 9 {
		errs = append(errs, fmt.Errorf("-replicas must be between 1 and 9, not %d", o.Replicas))
	}
	if o.Size < 1 || o.Size > 4<<20 {
		errs = append(errs, fmt.Errorf("-size must be between 1 and %d bytes, not %d", 4<<20, o.Size))
	}
	if o.Writers < 1 || o.Writers > 100_000 {
		errs = append(errs, fmt.Errorf("-writers must be between 1 and 100000, not %d", o.Writers))
	}
	if o.Window < 0 {
		errs = append(errs, fmt.Errorf("-window must not be negative, not %d", o.Window))
	}
	if o.Count < 0 || o.Catchup < 0 {
		errs = append(errs, errors.New("-count and -catchup must not be negative"))
	}
	if o.Count == 0 && o.Catchup == 0 && o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration must be positive, not %s", o.Duration))
	}
	if o.Catchup > 0 && o.Replicas < 3 {
		errs = append(errs, fmt.Errorf("-catchup needs at least 3 replicas (one stopped, a quorum left), not %d", o.Replicas))
	}
	if o.CatchupCPU != nil && o.Catchup == 0 {
		errs = append(errs, errors.New("a catch-up profile needs -catchup"))
	}
	if o.Processes && (o.Catchup > 0 || o.Trace != nil || o.AtEnd != nil) {
		errs = append(errs, errors.New("-processes runs no -catchup, -trace or -cpuprofile/-memprofile of this process (the replicas write -memprofile and -cpuprofile as FILE.r<replica>)"))
	}
	if o.TruncateEvery < 0 || (o.TruncateEvery > 0 && o.Catchup > 0) {
		errs = append(errs, errors.New("-truncate_every must not be negative, nor given with -catchup"))
	}
	if o.Catchup > 0 && o.Count > 0 {
		errs = append(errs, errors.New("-catchup and -count exclude each other: -catchup N writes N positions"))
	}
	return errors.Join(errs...)
}

// logBenchResult is what "regent log bench" reports; the JSON keys are fixed
// (issue 4).
type logBenchResult struct {
	Replicas int     `json:"replicas"`
	Writers  int     `json:"writers"`
	Size     int     `json:"size"`
	Appends  int     `json:"appends"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`

	AppendsPerS float64 `json:"appends_per_s"`
	MBPerS      float64 `json:"mb_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	P999Ms      float64 `json:"p999_ms"`
	// BatchMean is positions per write message the coordinator sent.
	BatchMean float64 `json:"batch_mean"`
	// FsyncsPerS is the coordinator's synced saves per second.
	FsyncsPerS float64 `json:"fsyncs_per_s"`
	// SaveMeanMs is the coordinator's mean time in one synced save.
	SaveMeanMs float64 `json:"save_mean_ms"`
	// FollowerFsyncsPerS and FollowerSaveMeanMs are the same for replica 2.
	FollowerFsyncsPerS float64 `json:"follower_fsyncs_per_s"`
	FollowerSaveMeanMs float64 `json:"follower_save_mean_ms"`
	// RSSMB is the peak resident set (VmHWM), RSSNowMB the resident set at
	// the end (VmRSS), in MiB: with Processes, of one replica process (the
	// largest); without, of this process, every replica together.
	RSSMB    float64 `json:"rss_mb"`
	RSSNowMB float64 `json:"rss_now_mb"`
	// RSSAnonMB and RSSFileMB split the resident set at the end: anonymous
	// memory (the Go heap, Badger's arenas) and mapped files (Badger's
	// tables and logs, reclaimable page cache). With Processes, the
	// largest of the replica processes'.
	RSSAnonMB float64 `json:"rss_anon_mb"`
	RSSFileMB float64 `json:"rss_file_mb"`
	// Processes is set when each replica ran in a process of its own;
	// ReplicaRSS then holds each one's memory, replica 1 first.
	Processes  bool         `json:"processes,omitempty"`
	ReplicaRSS []replicaRSS `json:"replica_rss,omitempty"`

	// Truncations is how many times the log was truncated during the load
	// (TruncateEvery).
	Truncations int `json:"truncations,omitempty"`

	// Stages are the medians of the steps of one append, with one writer
	// only (stageSpans).
	Stages []stageSpan `json:"stages,omitempty"`

	CatchupPositions int     `json:"catchup_positions,omitempty"`
	CatchupSeconds   float64 `json:"catchup_s,omitempty"`
	CatchupPerS      float64 `json:"catchup_positions_per_s,omitempty"`
	// CatchupRSSMB is the process's peak resident set during the catch-up
	// alone, in MiB (every replica together), where the kernel lets the
	// peak be reset (/proc/self/clear_refs); otherwise zero.
	CatchupRSSMB float64 `json:"catchup_rss_mb,omitempty"`
	// CatchupRequests is the catch-up requests the caught-up replica sent,
	// CatchupSent the positions the others sent it in answers (above
	// CatchupPositions: positions sent twice).
	CatchupRequests int `json:"catchup_requests,omitempty"`
	CatchupSent     int `json:"catchup_sent,omitempty"`
}

// runLogBench starts a log cluster under o.Dir, elects replica 1, appends
// as o says and measures. With o.Catchup the last replica is stopped while
// o.Catchup positions are written, then wiped and restarted, and the time
// until it votes with every position learned is measured.
func runLogBench(ctx context.Context, o logBenchOptions) (*logBenchResult, error) {
	if o.Processes {
		return runLogBenchProcesses(ctx, o)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	c, err := newLogCluster(o.Dir, o.Replicas, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("log bench: %w", err)
	}
	c.window = o.Window
	if o.Writers == 1 && o.Catchup == 0 {
		c.stages = newStageClock()
	}
	c.store.MemTableSize = o.MemTable
	defer c.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	for i := range c.replicas {
		if err := c.startReplica(i); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
		readers.Go(func() { c.consume(rctx, i) })
	}
	ectx, ecancel := context.WithTimeout(ctx, 60*time.Second)
	err = c.elect(ectx, 0)
	ecancel()
	if err != nil {
		return nil, fmt.Errorf("log bench: %w", err)
	}
	last := len(c.replicas) - 1
	count := o.Count
	if o.Catchup > 0 {
		count = o.Catchup
		if err := c.stopReplica(last); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
	}

	leader := c.replicas[0]
	syncs0, writes0, pos0 := leader.store.syncs.Load(), leader.tr.writes.Load(), leader.tr.positions.Load()
	st0 := leader.store.syncTime.Load()
	follower := c.replicas[1]
	fsyncs0, fst0 := follower.store.syncs.Load(), follower.store.syncTime.Load()
	if o.Trace != nil {
		if err := trace.Start(o.Trace); err != nil {
			return nil, fmt.Errorf("log bench: start trace: %w", err)
		}
	}
	if c.stages != nil {
		c.stages.on.Store(true)
	}
	var res0 logBenchResult
	lats, errs, elapsed, truncations, terr := loadWithTruncation(ctx, leader.node, o.Size, o.Writers, o.Duration, count, o.TruncateEvery, c.stages)
	if c.stages != nil {
		c.stages.on.Store(false)
		res0.Stages = c.stages.spans()
	}
	if o.Trace != nil {
		trace.Stop()
	}
	syncs, writes, pos := leader.store.syncs.Load()-syncs0, leader.tr.writes.Load()-writes0, leader.tr.positions.Load()-pos0
	st := time.Duration(leader.store.syncTime.Load() - st0)
	fsyncs, fst := follower.store.syncs.Load()-fsyncs0, time.Duration(follower.store.syncTime.Load()-fst0)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("log bench: %w", ctx.Err())
	}
	if terr != nil {
		return nil, fmt.Errorf("log bench: %w", terr)
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("log bench: no append succeeded (%d errors; is the leader stable?)", errs)
	}
	secs := elapsed.Seconds()
	res := &res0
	*res = logBenchResult{
		Stages:      res0.Stages,
		Replicas:    o.Replicas,
		Writers:     o.Writers,
		Size:        o.Size,
		Appends:     len(lats),
		Errors:      errs,
		Seconds:     secs,
		AppendsPerS: float64(len(lats)) / secs,
		MBPerS:      float64(len(lats)*o.Size) / secs / 1e6,
		P50Ms:       quantileMs(lats, 0.50),
		P99Ms:       quantileMs(lats, 0.99),
		P999Ms:      quantileMs(lats, 0.999),
		FsyncsPerS:  float64(syncs) / secs,
		Truncations: truncations,
	}
	if fsyncs > 0 {
		res.FollowerFsyncsPerS = float64(fsyncs) / secs
		res.FollowerSaveMeanMs = float64(fst) / float64(fsyncs) / float64(time.Millisecond)
	}
	if syncs > 0 {
		res.SaveMeanMs = float64(st) / float64(syncs) / float64(time.Millisecond)
	}
	if writes > 0 {
		res.BatchMean = float64(pos) / float64(writes)
	}

	if o.Catchup > 0 {
		target := leader.node.Status().LearnedTo
		if err := c.wipeReplica(last); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
		sent0 := map[*logReplica]uint64{}
		for _, r := range c.replicas[:last] {
			sent0[r] = r.tr.catchupPositions.Load()
		}
		hwmReset := resetPeakRSS() == nil
		if o.CatchupCPU != nil {
			if err := pprof.StartCPUProfile(o.CatchupCPU); err != nil {
				return nil, fmt.Errorf("log bench: start catch-up profile: %w", err)
			}
		}
		t0 := time.Now()
		if err := c.startReplica(last); err != nil {
			if o.CatchupCPU != nil {
				pprof.StopCPUProfile()
			}
			return nil, fmt.Errorf("log bench: %w", err)
		}
		readers.Go(func() { c.consume(rctx, last) })
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Minute)
		err := c.waitVoting(wctx, last, target)
		wcancel()
		d := time.Since(t0)
		if o.CatchupCPU != nil {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return nil, fmt.Errorf("log bench: catch-up: %w", err)
		}
		res.CatchupPositions = int(target)
		res.CatchupSeconds = d.Seconds()
		res.CatchupPerS = float64(target) / d.Seconds()
		res.CatchupRequests = int(c.replicas[last].tr.catchupRequests.Load())
		for _, r := range c.replicas[:last] {
			res.CatchupSent += int(r.tr.catchupPositions.Load() - sent0[r])
		}
		if hwmReset {
			res.CatchupRSSMB, _ = processRSS()
		}
	}
	res.RSSMB, res.RSSNowMB = processRSS()
	m := procStatus()
	res.RSSAnonMB, res.RSSFileMB = m["RssAnon"], m["RssFile"]
	if o.AtEnd != nil {
		if err := o.AtEnd(); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
	}
	return res, nil
}

// consume reads replica i's learned entries as a master would, so the node
// can drop what it keeps in memory for readers.
func (c *logCluster) consume(ctx context.Context, i int) {
	n := c.replicas[i].node
	var from paxos.Position
	for {
		es, err := n.Read(ctx, from)
		if err != nil {
			return
		}
		from = es[len(es)-1].Position + 1
	}
}

// appendLoad runs writers goroutines appending size-byte entries to n until
// count appends are done (count > 0) or d has passed. It returns the
// latency of every successful append, the number of failed ones and the
// time taken.
func appendLoad(ctx context.Context, n *replog.Node, size, writers int, d time.Duration, count int, stages *stageClock) ([]time.Duration, int, time.Duration) {
	data := make([]byte, size)
	_, _ = crand.Read(data) // incompressible; shared, never modified
	var left atomic.Int64
	left.Store(int64(count))
	var errs atomic.Int64
	lats := make([][]time.Duration, writers)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for lctx.Err() == nil {
				if count > 0 {
					if left.Add(-1) < 0 {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				actx, acancel := context.WithTimeout(lctx, 10*time.Second)
				pos, err := n.Append(actx, data)
				t1 := time.Now()
				acancel()
				if err != nil {
					errs.Add(1)
					if errors.Is(err, replog.ErrClosed) {
						return
					}
					continue
				}
				lats[w] = append(lats[w], t1.Sub(t0))
				if stages != nil {
					stages.mark(pos, stageAppend, t0)
					stages.mark(pos, stageReturn, t1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all, int(errs.Load()), elapsed
}

// quantileMs returns the q-quantile of the sorted durations by the
// nearest-rank method (the smallest value with at least q of them at or
// below it), in ms.
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(len(sorted)-1, i))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// processRSS returns this process's peak and current resident set sizes in
// MiB, from /proc/self/status (VmHWM, VmRSS); zero where that file does not
// exist.
func processRSS() (peak, now float64) {
	m := procStatus()
	return m["VmHWM"], m["VmRSS"]
}

// resetPeakRSS resets this process's peak resident set (VmHWM) to its
// current one, so a later processRSS reports the peak since.
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak rss: %w", err)
	}
	return nil
}

// procStatus returns the sizes in /proc/self/status, in MiB, by name
// (VmHWM, VmRSS, RssAnon, RssFile, …); empty where that file does not exist.
func procStatus() map[string]float64 {
	return parseProcStatus("/proc/self/status")
}

// parseProcStatus returns the sizes in the /proc/<pid>/status file at path,
// in MiB, by name; empty where that file does not exist.
func parseProcStatus(path string) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[k] = kb / 1024
	}
	return out
}

// Stages of one append, in the order they happen with one writer, as
// stageClock records them. Replica 1 is the coordinator, replica 2 the
// follower whose answer is timed.
const (
	stageAppend        = iota // Append called
	stageEarly                // the coordinator sends the write request
	stageLeaderSave0          // the coordinator's synced save of its accept begins
	stageLeaderSave1          // … ends
	stageFollowerRecv         // the follower's transport hands the write request to its node
	stageFollowerSave0        // the follower's synced save of its accept begins
	stageFollowerSave1        // … ends
	stageFollowerSend         // the follower sends its write response
	stageLeaderRecv           // the coordinator receives its first write response (from either follower)
	stageLearnedSave0         // the coordinator's save of the learned mark begins
	stageLearnedSave1         // … ends
	stageLearnedSend          // the coordinator sends the learned broadcast
	stageReturn               // Append returned
	stageOtherRecv            // replica 3 receives the write request
	stageOtherSend            // replica 3 sends its write response
	numStages
)

// stageClock records when each stage of an append happened, by position.
// It is meant for one writer, whose appends do not overlap, so each stage
// of a position is set once; with more writers it is not used.
type stageClock struct {
	on atomic.Bool // recording; off during set-up
	mu sync.Mutex
	at map[paxos.Position]*[numStages]time.Time
	// learnedTo is the coordinator's learned watermark as last saved: a
	// save that raises it records "learned" for the positions it covers,
	// which the core no longer writes again (HardState.LearnedTo). Only
	// the coordinator's save path (one goroutine) uses it.
	learnedTo paxos.Position
}

func newStageClock() *stageClock {
	return &stageClock{at: make(map[paxos.Position]*[numStages]time.Time)}
}

// mark records stage s of position p at now, unless already recorded.
func (c *stageClock) mark(p paxos.Position, s int, now time.Time) {
	if c == nil || !c.on.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.at[p]
	if t == nil {
		t = new([numStages]time.Time)
		c.at[p] = t
	}
	if t[s].IsZero() {
		t[s] = now
	}
}

// markMessages records the sends and receipts the clock times: on replica
// 1 (index 0) write requests, learned broadcasts and received write
// responses; on replica 2 received write requests and sent responses.
func (c *stageClock) markMessages(replica int, sent bool, msgs []paxos.Message) {
	if c == nil || replica > 2 {
		return
	}
	now := time.Now()
	for _, m := range msgs {
		switch {
		case replica == 0 && sent && m.Type == paxos.MsgWriteRequest:
			for _, a := range m.Actions {
				c.mark(a.Position, stageEarly, now)
			}
		case replica == 0 && sent && m.Type == paxos.MsgLearned:
			for _, a := range m.Actions {
				c.mark(a.Position, stageLearnedSend, now)
			}
		case replica == 0 && !sent && m.Type == paxos.MsgWriteResponse && m.Result == paxos.ResultAccept:
			for p := m.Position; p < m.End; p++ {
				c.mark(p, stageLeaderRecv, now)
			}
		case replica == 2 && !sent && m.Type == paxos.MsgWriteRequest:
			for _, a := range m.Actions {
				c.mark(a.Position, stageOtherRecv, now)
			}
		case replica == 2 && sent && m.Type == paxos.MsgWriteResponse && m.Result == paxos.ResultAccept:
			for p := m.Position; p < m.End; p++ {
				c.mark(p, stageOtherSend, now)
			}
		case replica == 1 && !sent && m.Type == paxos.MsgWriteRequest:
			for _, a := range m.Actions {
				c.mark(a.Position, stageFollowerRecv, now)
			}
		case replica == 1 && sent && m.Type == paxos.MsgWriteResponse && m.Result == paxos.ResultAccept:
			for p := m.Position; p < m.End; p++ {
				c.mark(p, stageFollowerSend, now)
			}
		}
	}
}

// markSave records the start and end of a save on replica 0 or 1 of the
// positions it holds: accepts (synced) and learned marks, the coordinator's
// learned ones also from a rise of its learned watermark.
func (c *stageClock) markSave(replica int, b replog.Batch, t0, t1 time.Time) {
	if c == nil || replica > 1 {
		return
	}
	if replica == 0 && b.HardState != nil && b.HardState.LearnedTo > c.learnedTo {
		for p := max(c.learnedTo, b.HardState.Begin); p < b.HardState.LearnedTo; p++ {
			c.mark(p, stageLearnedSave0, t0)
			c.mark(p, stageLearnedSave1, t1)
		}
		c.learnedTo = b.HardState.LearnedTo
	}
	for _, a := range b.Actions {
		switch {
		case replica == 0 && a.Learned:
			c.mark(a.Position, stageLearnedSave0, t0)
			c.mark(a.Position, stageLearnedSave1, t1)
		case replica == 0:
			c.mark(a.Position, stageLeaderSave0, t0)
			c.mark(a.Position, stageLeaderSave1, t1)
		case !a.Learned:
			c.mark(a.Position, stageFollowerSave0, t0)
			c.mark(a.Position, stageFollowerSave1, t1)
		}
	}
}

// stageSpans names the spans the bench reports, each from one stage to
// another (the later of two, for the coordinator's wait for both saves).
var stageSpans = []struct {
	name     string
	from, to []int
}{
	{"append to write request sent", []int{stageAppend}, []int{stageEarly}},
	{"write request: coordinator to follower", []int{stageEarly}, []int{stageFollowerRecv}},
	{"write request: coordinator to replica 3", []int{stageEarly}, []int{stageOtherRecv}},
	{"replica 3: received to response sent", []int{stageOtherRecv}, []int{stageOtherSend}},
	{"follower: received to save begins", []int{stageFollowerRecv}, []int{stageFollowerSave0}},
	{"follower: synced save", []int{stageFollowerSave0}, []int{stageFollowerSave1}},
	{"follower: saved to response sent", []int{stageFollowerSave1}, []int{stageFollowerSend}},
	{"follower's response sent to coordinator's first in (< 0: replica 3 was first)", []int{stageFollowerSend}, []int{stageLeaderRecv}},
	{"coordinator: write request sent to save begins", []int{stageEarly}, []int{stageLeaderSave0}},
	{"coordinator: synced save", []int{stageLeaderSave0}, []int{stageLeaderSave1}},
	{"coordinator: both accepts in to learned save begins", []int{stageLeaderRecv, stageLeaderSave1}, []int{stageLearnedSave0}},
	{"coordinator: learned save (unsynced)", []int{stageLearnedSave0}, []int{stageLearnedSave1}},
	{"coordinator: both accepts in to learned sent", []int{stageLeaderRecv, stageLeaderSave1}, []int{stageLearnedSend}},
	{"coordinator: both accepts in to Append returned", []int{stageLeaderRecv, stageLeaderSave1}, []int{stageReturn}},
	{"Append, whole", []int{stageAppend}, []int{stageReturn}},
}

// stageSpan is the median of one span over the positions that recorded
// both ends, in ms.
type stageSpan struct {
	Name  string  `json:"name"`
	P50Ms float64 `json:"p50_ms"`
	Count int     `json:"count"`
}

// spans returns the median of every span in stageSpans.
func (c *stageClock) spans() []stageSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := func(t *[numStages]time.Time, ss []int) (time.Time, bool) {
		var out time.Time
		for _, s := range ss {
			if t[s].IsZero() {
				return time.Time{}, false
			}
			if t[s].After(out) {
				out = t[s]
			}
		}
		return out, true
	}
	var out []stageSpan
	for _, sp := range stageSpans {
		var ds []time.Duration
		for _, t := range c.at {
			from, ok1 := latest(t, sp.from)
			to, ok2 := latest(t, sp.to)
			if ok1 && ok2 {
				ds = append(ds, to.Sub(from))
			}
		}
		slices.Sort(ds)
		out = append(out, stageSpan{Name: sp.name, P50Ms: quantileMs(ds, 0.5), Count: len(ds)})
	}
	return out
}
