package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The process mode of "regent log bench" (-processes) runs each replica in
// a process of its own, as masters run: the bench starts its own binary once
// per replica with the hidden "regent log bench-replica", and drives the
// children through their stdin and stdout, one JSON object per line each
// way (a benchCommand in, a benchReply out). Replica 1's child also runs the
// appenders, so the latency is what a master serving its clients would see
// and no hop between the bench and the coordinator is added. The peak
// resident set is then per replica: the bench reads each child's
// /proc/<pid>/status before telling it to quit.
//
// A child runs with a master's soft memory limit (masterMemoryLimit) unless
// GOMEMLIMIT is set, and exits when its stdin closes, so no child outlives
// the bench and keeps a store's lock.

// benchCommand is one line the bench writes to a replica child.
type benchCommand struct {
	// Op is "elect" (replica 1: become the coordinator), "mark" (start
	// counting fsyncs), "load" (replica 1: run the appenders), "stats"
	// (report the counters since "mark") or "quit".
	Op string `json:"op"`
	// Load, with "load".
	Size     int           `json:"size,omitempty"`
	Writers  int           `json:"writers,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Count    int           `json:"count,omitempty"`
	// TruncateEvery, with "load": see logBenchOptions.TruncateEvery.
	TruncateEvery int `json:"truncate_every,omitempty"`
}

// benchReply is a replica child's answer to one benchCommand, and the first
// line it writes once its replica runs (with no command).
type benchReply struct {
	Err string `json:"err,omitempty"`
	// Result, for "load": the coordinator's figures (no RSS).
	Result *logBenchResult `json:"result,omitempty"`
	// Syncs, SyncNs and Seconds, for "stats": synced saves, time in them
	// and the seconds since "mark".
	Syncs   uint64  `json:"syncs,omitempty"`
	SyncNs  int64   `json:"sync_ns,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// replicaRSS is the memory of one replica process, in MiB, from its
// /proc/<pid>/status at the end of a run.
type replicaRSS struct {
	PeakMB float64 `json:"peak_mb"` // VmHWM
	NowMB  float64 `json:"now_mb"`  // VmRSS
	AnonMB float64 `json:"anon_mb"` // RssAnon
	FileMB float64 `json:"file_mb"` // RssFile
}

// replicaChild is a running "regent log bench-replica".
type replicaChild struct {
	index int // 0-based
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	enc   *json.Encoder
}

// call sends c and waits for the child's reply.
func (rc *replicaChild) call(c benchCommand) (*benchReply, error) {
	if err := rc.enc.Encode(c); err != nil {
		return nil, fmt.Errorf("replica %d: %s: %w", rc.index+1, c.Op, err)
	}
	return rc.reply(c.Op)
}

// reply reads the child's next reply to op.
func (rc *replicaChild) reply(op string) (*benchReply, error) {
	if !rc.out.Scan() {
		err := rc.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("replica %d: %s: the replica process ended: %w", rc.index+1, op, err)
	}
	var r benchReply
	if err := json.Unmarshal(rc.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("replica %d: %s: decode %q: %w", rc.index+1, op, rc.out.Text(), err)
	}
	if r.Err != "" {
		return nil, fmt.Errorf("replica %d: %s: %s", rc.index+1, op, r.Err)
	}
	return &r, nil
}

// runLogBenchProcesses is runLogBench with every replica in its own process
// (o.Processes).
func runLogBenchProcesses(ctx context.Context, o logBenchOptions) (res *logBenchResult, err error) {
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("log bench: find own executable: %w", err)
		}
	}
	ports, err := freePorts(o.Replicas)
	if err != nil {
		return nil, fmt.Errorf("log bench: %w", err)
	}
	var masters []string
	for _, p := range ports {
		masters = append(masters, "127.0.0.1:"+strconv.Itoa(p))
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	children := make([]*replicaChild, 0, o.Replicas)
	defer func() {
		// Quit politely; a child that does not answer is killed with
		// cctx, and every child ends when its stdin closes.
		for _, rc := range children {
			if err == nil {
				_ = rc.enc.Encode(benchCommand{Op: "quit"})
			}
			rc.in.Close()
		}
		if err != nil {
			// The run failed: a child may be stuck (electing, opening its
			// store) and would not read its closed stdin soon; kill them.
			cancel()
		}
		var errs []error
		for _, rc := range children {
			if werr := rc.cmd.Wait(); werr != nil && err == nil {
				errs = append(errs, fmt.Errorf("replica %d: %w", rc.index+1, werr))
			}
		}
		if err == nil && len(errs) > 0 {
			res, err = nil, fmt.Errorf("log bench: %w", errors.Join(errs...))
		}
	}()
	var stderr io.Writer = os.Stderr
	if o.ChildStderr != nil {
		// Each child's stderr is copied by a goroutine of its own.
		stderr = &lockedWriter{w: o.ChildStderr}
	}
	level := o.ChildLogLevel
	if level == "" {
		level = "off"
	}
	for i := range o.Replicas {
		args := []string{"log", "bench-replica",
			"-index", strconv.Itoa(i + 1),
			"-masters", strings.Join(masters, ","),
			"-dir", o.Dir,
			"-window", strconv.Itoa(o.Window),
			"-memtable_mb", strconv.FormatInt(o.MemTable>>20, 10),
			"-log_level", level,
		}
		if o.ChildMemProfile != "" {
			args = append(args, "-memprofile", o.ChildMemProfile+".r"+strconv.Itoa(i+1))
		}
		if o.ChildCPUProfile != "" {
			args = append(args, "-cpuprofile", o.ChildCPUProfile+".r"+strconv.Itoa(i+1))
		}
		cmd := exec.CommandContext(cctx, bin, args...)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("log bench: replica %d: %w", i+1, err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, fmt.Errorf("log bench: replica %d: %w", i+1, err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("log bench: replica %d: %w", i+1, err)
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		children = append(children, &replicaChild{index: i, cmd: cmd, in: in, out: sc, enc: json.NewEncoder(in)})
	}
	for _, rc := range children {
		if _, err := rc.reply("start"); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
	}
	leader := children[0]
	if _, err := leader.call(benchCommand{Op: "elect"}); err != nil {
		return nil, fmt.Errorf("log bench: %w", err)
	}
	for _, rc := range children {
		if _, err := rc.call(benchCommand{Op: "mark"}); err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
	}
	lr, err := leader.call(benchCommand{Op: "load", Size: o.Size, Writers: o.Writers, Duration: o.Duration, Count: o.Count, TruncateEvery: o.TruncateEvery})
	if err != nil {
		return nil, fmt.Errorf("log bench: %w", err)
	}
	if lr.Result == nil {
		return nil, errors.New("log bench: replica 1: load: no result")
	}
	res = lr.Result
	res.Replicas = o.Replicas
	res.Processes = true
	for _, rc := range children {
		st, err := rc.call(benchCommand{Op: "stats"})
		if err != nil {
			return nil, fmt.Errorf("log bench: %w", err)
		}
		if rc.index == 1 && st.Syncs > 0 && st.Seconds > 0 {
			res.FollowerFsyncsPerS = float64(st.Syncs) / st.Seconds
			res.FollowerSaveMeanMs = float64(st.SyncNs) / float64(st.Syncs) / float64(time.Millisecond)
		}
		m := pidStatus(rc.cmd.Process.Pid)
		r := replicaRSS{PeakMB: m["VmHWM"], NowMB: m["VmRSS"], AnonMB: m["RssAnon"], FileMB: m["RssFile"]}
		res.ReplicaRSS = append(res.ReplicaRSS, r)
		res.RSSMB = max(res.RSSMB, r.PeakMB)
		res.RSSNowMB = max(res.RSSNowMB, r.NowMB)
		res.RSSAnonMB = max(res.RSSAnonMB, r.AnonMB)
		res.RSSFileMB = max(res.RSSFileMB, r.FileMB)
	}
	return res, nil
}

// pidStatus returns the sizes in /proc/<pid>/status, in MiB, by name;
// empty where that file does not exist.
func pidStatus(pid int) map[string]float64 {
	return parseProcStatus(filepath.Join("/proc", strconv.Itoa(pid), "status"))
}

// cmdLogBenchReplica runs "regent log bench-replica" (hidden): one replica
// of a "regent log bench -processes" run, driven through stdin and stdout
// (benchCommand, benchReply). It exits when stdin closes.
func cmdLogBenchReplica(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	index := fs.Int("index", 0, "this replica's number, from 1; replica 1 is the coordinator")
	masters := fs.String("masters", "", "every replica's peer address, comma-separated, in order")
	dir := fs.String("dir", "", "the bench's directory; the store is under r<index>")
	window := fs.Int("window", 0, "the core's window (0: a master's)")
	memtable := fs.Int64("memtable_mb", 0, "Badger memtable size in MiB (0: a master's)")
	logLevel := fs.String("log_level", "off", "log level, on stderr")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file on stats")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile from mark to stats to this file")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	addrs := strings.Split(*masters, ",")
	if *masters == "" || *index < 1 || *index > len(addrs) || *dir == "" {
		return e.usageError("-index, -masters and -dir are required, and -index must name one of -masters")
	}
	log := NewLogger(LogOptions{Name: "regent", Level: *logLevel, Output: e.Stderr})
	if e.Getenv("GOMEMLIMIT") == "" {
		// As a master does (cmdMaster), so the RSS is a master's.
		debug.SetMemoryLimit(masterMemoryLimit)
	}
	err := serveBenchReplica(ctx, e.Stdin, e.Stdout, benchReplicaOptions{
		Index: *index - 1, Masters: addrs, Dir: *dir, Window: *window, MemTable: *memtable << 20,
		Logger: log, MemProfile: *memProfile, CPUProfile: *cpuProfile,
	})
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	return ExitOK
}

// benchReplicaOptions configures serveBenchReplica.
type benchReplicaOptions struct {
	Index      int      // 0-based; 0 is the coordinator
	Masters    []string // every replica's address
	Dir        string
	Window     int
	MemTable   int64
	Logger     hclog.Logger
	MemProfile string
	CPUProfile string
}

// serveBenchReplica runs replica o.Index of a bench cluster and answers the
// commands read from in on out, until "quit" or the end of in.
func serveBenchReplica(ctx context.Context, in io.Reader, out io.Writer, o benchReplicaOptions) error {
	c := newLogClusterAt(o.Dir, o.Masters, o.Logger)
	c.window = o.Window
	c.store.MemTableSize = o.MemTable
	enc := json.NewEncoder(out)
	if err := c.startReplica(o.Index); err != nil {
		_ = enc.Encode(benchReply{Err: err.Error()})
		return fmt.Errorf("bench replica: %w", err)
	}
	defer c.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { c.consume(rctx, o.Index) })

	// Commands arrive on a goroutine of their own, so that the end of in
	// (the bench is gone) cancels a load in progress.
	cmds := make(chan benchCommand)
	wg.Go(func() {
		defer cancel()
		defer close(cmds)
		dec := json.NewDecoder(in)
		for {
			var cmd benchCommand
			if err := dec.Decode(&cmd); err != nil {
				return
			}
			select {
			case cmds <- cmd:
			case <-rctx.Done():
				return
			}
		}
	})
	if err := enc.Encode(benchReply{}); err != nil {
		return fmt.Errorf("bench replica: %w", err)
	}
	r := c.replicas[o.Index]
	var (
		markAt      time.Time
		syncs0, st0 = r.store.syncs.Load(), r.store.syncTime.Load()
		cpuFile     *os.File // while profiling
	)
	stopCPU := func() error {
		if cpuFile == nil {
			return nil
		}
		pprof.StopCPUProfile()
		err := cpuFile.Close()
		cpuFile = nil
		return err
	}
	defer func() { _ = stopCPU() }() // on an error return: the error being returned matters more
	for cmd := range cmds {
		var rep benchReply
		var err error
		switch cmd.Op {
		case "elect":
			ectx, ecancel := context.WithTimeout(rctx, 60*time.Second)
			err = c.elect(ectx, o.Index)
			ecancel()
		case "mark":
			markAt = time.Now()
			syncs0, st0 = r.store.syncs.Load(), r.store.syncTime.Load()
			if o.CPUProfile != "" && cpuFile == nil {
				cpuFile, err = startCPUProfile(o.CPUProfile)
			}
		case "load":
			rep.Result, err = measureLoad(rctx, r, cmd.Size, cmd.Writers, cmd.Duration, cmd.Count, cmd.TruncateEvery)
		case "stats":
			err = stopCPU()
			rep.Syncs, rep.SyncNs = r.store.syncs.Load()-syncs0, r.store.syncTime.Load()-st0
			if !markAt.IsZero() {
				rep.Seconds = time.Since(markAt).Seconds()
			}
			if o.MemProfile != "" && err == nil {
				err = writeHeapProfile(o.MemProfile)
			}
		case "quit":
			cancel()
			return nil
		default:
			err = fmt.Errorf("unknown command %q", cmd.Op)
		}
		if err != nil {
			rep = benchReply{Err: err.Error()}
		}
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("bench replica: %w", err)
		}
	}
	return nil
}

// measureLoad runs the appenders on the coordinator r and returns its
// figures: throughput, latency, batching and its fsyncs (no RSS, no
// follower's).
func measureLoad(ctx context.Context, r *logReplica, size, writers int, d time.Duration, count, truncateEvery int) (*logBenchResult, error) {
	syncs0, writes0, pos0 := r.store.syncs.Load(), r.tr.writes.Load(), r.tr.positions.Load()
	st0 := r.store.syncTime.Load()
	lats, errs, elapsed, truncations, terr := loadWithTruncation(ctx, r.node, size, writers, d, count, truncateEvery, nil)
	syncs, writes, pos := r.store.syncs.Load()-syncs0, r.tr.writes.Load()-writes0, r.tr.positions.Load()-pos0
	st := time.Duration(r.store.syncTime.Load() - st0)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("load: %w", ctx.Err())
	}
	if terr != nil {
		return nil, fmt.Errorf("load: %w", terr)
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("load: no append succeeded (%d errors; is the leader stable?)", errs)
	}
	secs := elapsed.Seconds()
	res := &logBenchResult{
		Writers:     writers,
		Size:        size,
		Appends:     len(lats),
		Errors:      errs,
		Seconds:     secs,
		AppendsPerS: float64(len(lats)) / secs,
		MBPerS:      float64(len(lats)*size) / secs / 1e6,
		P50Ms:       quantileMs(lats, 0.50),
		P99Ms:       quantileMs(lats, 0.99),
		P999Ms:      quantileMs(lats, 0.999),
		FsyncsPerS:  float64(syncs) / secs,
		Truncations: truncations,
	}
	if syncs > 0 {
		res.SaveMeanMs = float64(st) / float64(syncs) / float64(time.Millisecond)
	}
	if writes > 0 {
		res.BatchMean = float64(pos) / float64(writes)
	}
	return res, nil
}

// startCPUProfile starts a CPU profile into a new file at path; the caller
// stops it and then closes the file.
func startCPUProfile(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return f, nil
}

// writeHeapProfile writes this process's heap profile to a new file at path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
