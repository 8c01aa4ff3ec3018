package appliance

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// cmdLogBench runs "regent log bench": an N-replica log in this process on
// loopback (real Badger stores, real gRPC peer transports, real fsyncs),
// driven by concurrent appenders on the coordinator; it prints throughput,
// latency, batching, fsyncs and memory. With -catchup it also measures how
// fast a wiped replica catches up.
func cmdLogBench(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	var o logBenchOptions
	fs.IntVar(&o.Replicas, "replicas", 3, "replicas of the log (quorum: a majority)")
	fs.IntVar(&o.Size, "size", 1024, "bytes of each entry")
	fs.IntVar(&o.Writers, "writers", 1, "concurrent appenders")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to append (ignored with -count)")
	fs.IntVar(&o.Count, "count", 0, "append this many entries instead of running for -duration")
	fs.IntVar(&o.Catchup, "catchup", 0, "write this many positions with one replica stopped, then wipe it, restart it and time its catch-up")
	fs.IntVar(&o.TruncateEvery, "truncate_every", 0, "append a snapshot and truncate the log below it every this many positions, as a master does (0: never; a master's default is 10000)")
	fs.BoolVar(&o.Processes, "processes", false, "run each replica in a process of its own (RSS then per replica); replica 1's process runs the appenders")
	fs.IntVar(&o.Window, "window", 0, "positions in flight at most (the core's window; 0: what a master uses)")
	memtable := fs.Int("memtable_mb", 0, "Badger memtable size in MiB (0: what a master uses)")
	dir := fs.String("dir", "", "directory for the replicas' stores (default: a new temporary directory, removed at exit)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	catchupProfile := fs.String("catchup_cpuprofile", "", "write a CPU profile of the catch-up only (with -catchup) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
	traceFile := fs.String("trace", "", "write a runtime execution trace of the appends (go tool trace) to this file")
	logLevel := fs.String("log_level", "off", "log level of the replicas (off, error, warn, info, debug, trace), on stderr")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	o.MemTable = int64(*memtable) << 20
	if *catchupProfile != "" && (o.Catchup == 0 || *cpuProfile != "") {
		return e.usageError("-catchup_cpuprofile needs -catchup and excludes -cpuprofile")
	}
	if err := o.validate(); err != nil {
		return e.usageError("%v", err)
	}
	o.Logger = NewLogger(LogOptions{Name: "regent", Level: *logLevel, Output: e.Stderr})
	if o.Processes {
		o.ChildStderr, o.ChildLogLevel = e.Stderr, *logLevel
		o.ChildCPUProfile, o.ChildMemProfile = *cpuProfile, *memProfile
		*cpuProfile, *memProfile = "", ""
		if *traceFile != "" {
			return e.usageError("-processes runs no -trace")
		}
	}

	d := *dir
	var err error
	if d == "" {
		d, err = os.MkdirTemp("", "regent-log-bench-")
		if err == nil {
			defer os.RemoveAll(d)
		}
	} else if entries, rerr := os.ReadDir(d); rerr == nil && len(entries) > 0 {
		return e.usageError("-dir %s is not empty", d)
	} else {
		err = os.MkdirAll(d, 0o700)
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	o.Dir = d

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		defer pprof.StopCPUProfile()
	}

	if *catchupProfile != "" {
		f, err := os.Create(*catchupProfile)
		if err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		defer f.Close()
		o.CatchupCPU = f
	}

	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		defer f.Close()
		o.Trace = f
	}

	if *memProfile != "" {
		o.AtEnd = func() error {
			f, err := os.Create(*memProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			return pprof.Lookup("heap").WriteTo(f, 0)
		}
	}
	res, err := runLogBench(ctx, o)
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	if *asJSON {
		if err := json.NewEncoder(e.Stdout).Encode(res); err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		return ExitOK
	}
	res.writeTable(e.Stdout)
	return ExitOK
}

// writeTable prints r for a person.
func (r *logBenchResult) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "replicas\t%d\n", r.Replicas)
	fmt.Fprintf(tw, "writers\t%d\n", r.Writers)
	fmt.Fprintf(tw, "entry size\t%d B\n", r.Size)
	fmt.Fprintf(tw, "appends\t%d in %.2f s (%d errors)\n", r.Appends, r.Seconds, r.Errors)
	fmt.Fprintf(tw, "appends/s\t%.0f\n", r.AppendsPerS)
	fmt.Fprintf(tw, "MB/s\t%.2f\n", r.MBPerS)
	fmt.Fprintf(tw, "latency p50 / p99 / p99.9\t%.3f / %.3f / %.3f ms\n", r.P50Ms, r.P99Ms, r.P999Ms)
	if r.Truncations > 0 {
		fmt.Fprintf(tw, "truncations\t%d (a snapshot appended, then the log truncated below it)\n", r.Truncations)
	}
	fmt.Fprintf(tw, "batch\t%.1f positions per write message (coordinator)\n", r.BatchMean)
	fmt.Fprintf(tw, "fsyncs/s\t%.0f (coordinator's synced saves, %.3f ms each); a follower: %.0f, %.3f ms each\n", r.FsyncsPerS, r.SaveMeanMs, r.FollowerFsyncsPerS, r.FollowerSaveMeanMs)
	if r.Processes {
		fmt.Fprintf(tw, "RSS\tpeak %.0f MiB per replica (the largest of %d replica processes)\n", r.RSSMB, len(r.ReplicaRSS))
		for i, m := range r.ReplicaRSS {
			fmt.Fprintf(tw, "  replica %d\tpeak %.0f MiB, now %.0f MiB = %.0f anonymous + %.0f mapped files\n", i+1, m.PeakMB, m.NowMB, m.AnonMB, m.FileMB)
		}
	} else {
		fmt.Fprintf(tw, "RSS\tpeak %.0f MiB, now %.0f MiB = %.0f anonymous + %.0f mapped files (whole process: %d replicas)\n", r.RSSMB, r.RSSNowMB, r.RSSAnonMB, r.RSSFileMB, r.Replicas)
	}
	for _, sp := range r.Stages {
		fmt.Fprintf(tw, "  %s\t%.3f ms p50 (%d)\n", sp.Name, sp.P50Ms, sp.Count)
	}
	if r.CatchupPositions > 0 {
		fmt.Fprintf(tw, "catch-up\t%d positions in %.2f s: %.0f positions/s\n", r.CatchupPositions, r.CatchupSeconds, r.CatchupPerS)
		fmt.Fprintf(tw, "catch-up traffic\t%d requests, %d positions sent\n", r.CatchupRequests, r.CatchupSent)
		if r.CatchupRSSMB > 0 {
			fmt.Fprintf(tw, "catch-up RSS\tpeak %.0f MiB (whole process: %d replicas)\n", r.CatchupRSSMB, r.Replicas)
		}
	}
	tw.Flush()
}

// cmdLogInspect runs "regent log inspect": an offline, read-only view of the
// replica under -work_dir. It refuses while a master holds the replica. With
// -entries it prints, instead of the report, one line per learned position
// with the sha256 of the value stored there, so that two replicas' outputs
// can be compared with diff.
func cmdLogInspect(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	workDir := fs.String("work_dir", "", "the master's work_dir; the replica is its "+ReplicatedLogDir+" directory (required)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object (with -entries: one JSON object per line)")
	entries := fs.Bool("entries", false, "print each learned position, its entry type and the sha256 of its value, one per line, instead of the report")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if *workDir == "" {
		return e.usageError("-work_dir is required")
	}
	dir := filepath.Join(*workDir, ReplicatedLogDir)
	if *entries {
		_, es, err := readLearnedEntries(dir)
		if err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		if err := writeLearnedEntries(e.Stdout, es, *asJSON); err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		return ExitOK
	}
	rep, err := inspectReplica(dir)
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
			return ExitFailure
		}
		return ExitOK
	}
	rep.writeTable(e.Stdout)
	return ExitOK
}

// replicaReport is what "regent log inspect" shows of a replica.
type replicaReport struct {
	Dir       string `json:"dir"`
	Replica   uint64 `json:"replica_id"`
	Cluster   uint64 `json:"cluster_id"`
	Status    string `json:"status"`
	Promised  string `json:"promised"`
	Begin     uint64 `json:"begin"`
	End       uint64 `json:"end"`
	Stored    uint64 `json:"stored_positions"`
	Learned   uint64 `json:"learned_positions"`
	Unlearned uint64 `json:"unlearned_positions"`
	Holes     uint64 `json:"holes"`
	// LearnedTo is one past the last position learned in order from Begin.
	LearnedTo uint64         `json:"learned_to"`
	ConfigAt  uint64         `json:"membership_at"`
	Members   []memberReport `json:"members"`
	DiskBytes int64          `json:"disk_bytes"`
	LSMBytes  int64          `json:"lsm_bytes"`
	VlogBytes int64          `json:"value_log_bytes"`
	DataBytes int64          `json:"entry_bytes"`
}

type memberReport struct {
	ID    uint64 `json:"id"`
	Addr  string `json:"addr"`
	Voter bool   `json:"voter"`
}

// learned reports whether the action a, stored by the replica whose hard
// state is hs, holds the value chosen at its position. It is the one rule
// that "regent log inspect" (its learned counts and -entries) and the chaos
// harness's comparison of replicas use: the action's own Learned flag, or a
// position below the learned watermark in the hard state (a position there
// is learned even where its action's flag was never saved).
func learned(hs paxos.HardState, a paxos.Action) bool {
	return a.Learned || a.Position < hs.LearnedTo
}

// openReplica opens the store in dir read-only, turning the usual refusals
// into advice for the operator.
func openReplica(dir string) (*badgerstore.Store, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no replica at %s", dir)
		}
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	st, err := badgerstore.Open(dir, badgerstore.Options{ReadOnly: true, GCInterval: -1})
	if err != nil {
		var inUse *replog.InUseError
		switch {
		case errors.As(err, &inUse):
			return nil, fmt.Errorf("the replica at %s is in use by a running master; stop it (or its appliance) first: this command only reads stopped replicas", dir)
		case errors.Is(err, badgerstore.ErrUnclean):
			return nil, fmt.Errorf("the replica at %s was not closed cleanly; start its master once so that it replays its write-ahead log, stop it, then inspect it: %w", dir, err)
		}
		return nil, fmt.Errorf("inspect: %w", err)
	}
	return st, nil
}

// eachAction calls fn with every action st stores in [hs.Begin, last
// stored position], in ascending order, reading a few MiB at a time.
func eachAction(st *badgerstore.Store, hs paxos.HardState, fn func(a paxos.Action)) error {
	last, ok, err := st.LastPosition()
	if err != nil || !ok || last < hs.Begin {
		return err
	}
	for from := hs.Begin; from <= last; {
		as, err := st.Actions(from, last+1, 4<<20)
		if err != nil {
			return err
		}
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			fn(a)
		}
		from = as[len(as)-1].Position + 1
	}
	return nil
}

// inspectReplica opens the store in dir read-only and reports on it.
func inspectReplica(dir string) (*replicaReport, error) {
	st, err := openReplica(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	hs, err := st.InitialState()
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	rep := &replicaReport{
		Dir:      dir,
		Replica:  uint64(hs.Replica),
		Cluster:  uint64(hs.Cluster),
		Status:   replicaStatus(hs),
		Promised: fmt.Sprintf("%d.%d", hs.Promised.Round, hs.Promised.Replica),
		Begin:    uint64(hs.Begin),
		ConfigAt: uint64(hs.ConfigAt),
	}
	for _, m := range hs.Membership.Members {
		rep.Members = append(rep.Members, memberReport{ID: uint64(m.ID), Addr: m.Addr, Voter: m.Voter})
	}
	rep.End, rep.LearnedTo = rep.Begin, rep.Begin
	inOrder := true
	next := hs.Begin
	err = eachAction(st, hs, func(a paxos.Action) {
		if a.Position != next {
			rep.Holes += uint64(a.Position - next)
			inOrder = false
		}
		next = a.Position + 1
		rep.End = uint64(next)
		rep.Stored++
		rep.DataBytes += int64(len(a.Entry.Data))
		if learned(hs, a) {
			rep.Learned++
			if inOrder {
				rep.LearnedTo = uint64(a.Position) + 1
			}
		} else {
			rep.Unlearned++
			inOrder = false
		}
	})
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	u, err := st.DiskUsage()
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	rep.DiskBytes, rep.LSMBytes, rep.VlogBytes = u.Allocated, u.LSM, u.ValueLog
	return rep, nil
}

// learnedEntry is one learned position of a replica as "regent log inspect
// -entries" prints it: the value's type and the sha256 of the value
// ([entryDigest]), not the value itself.
type learnedEntry struct {
	Position uint64 `json:"position"`
	Type     string `json:"type"`
	// Tombstone marks a NOP that stands for a truncated position: it may
	// stand for any value, so comparisons skip it.
	Tombstone bool   `json:"tombstone,omitempty"`
	SHA256    string `json:"sha256"`
}

// readLearnedEntries opens the store in dir read-only and returns its hard
// state and every position it holds as learned (by [learned]), ascending.
func readLearnedEntries(dir string) (paxos.HardState, []learnedEntry, error) {
	st, err := openReplica(dir)
	if err != nil {
		return paxos.HardState{}, nil, err
	}
	defer st.Close()
	hs, err := st.InitialState()
	if err != nil {
		return paxos.HardState{}, nil, fmt.Errorf("inspect: %w", err)
	}
	var es []learnedEntry
	err = eachAction(st, hs, func(a paxos.Action) {
		if !learned(hs, a) {
			return
		}
		sum := entryDigest(a.Entry)
		es = append(es, learnedEntry{
			Position:  uint64(a.Position),
			Type:      a.Entry.Type.String(),
			Tombstone: a.Entry.Type == paxos.EntryNop && a.Entry.Tombstone,
			SHA256:    hex.EncodeToString(sum[:]),
		})
	})
	if err != nil {
		return paxos.HardState{}, nil, fmt.Errorf("inspect: %w", err)
	}
	return hs, es, nil
}

// entryDigest returns the sha256 of a canonical encoding of e: every field
// that makes the chosen value (type, data, truncation point, tombstone mark,
// membership), none that a replica's own history adds (promises, the
// proposal that wrote it, the Learned flag). Two entries have the same
// digest exactly when the core considers them the same value: nil and
// empty data encode alike.
func entryDigest(e paxos.Entry) [sha256.Size]byte {
	b := binary.AppendUvarint(nil, uint64(e.Type))
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	b = append(b, e.Data...)
	b = binary.AppendUvarint(b, uint64(e.To))
	if e.Tombstone {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if e.Config == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(e.Config.Cluster))
		b = binary.AppendUvarint(b, uint64(len(e.Config.Members)))
		for _, m := range e.Config.Members {
			b = binary.AppendUvarint(b, uint64(m.ID))
			b = binary.AppendUvarint(b, uint64(len(m.Addr)))
			b = append(b, m.Addr...)
			if m.Voter {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return sha256.Sum256(b)
}

// writeLearnedEntries prints es one per line: "position type sha256" (with
// " tombstone" after a tombstone NOP), or with asJSON one JSON object each.
func writeLearnedEntries(w io.Writer, es []learnedEntry, asJSON bool) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, le := range es {
		if asJSON {
			if err := enc.Encode(le); err != nil {
				return fmt.Errorf("write entries: %w", err)
			}
			continue
		}
		tomb := ""
		if le.Tombstone {
			tomb = " tombstone"
		}
		fmt.Fprintf(bw, "%d %s %s%s\n", le.Position, le.Type, le.SHA256, tomb)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write entries: %w", err)
	}
	return nil
}

// replicaStatus names hs's status; a store without a replica ID is EMPTY.
func replicaStatus(hs paxos.HardState) string {
	if hs.Replica == 0 || hs.Status == 0 {
		return statusName(paxos.StatusEmpty)
	}
	return statusName(hs.Status)
}

func statusName(s paxos.Status) string {
	switch s {
	case paxos.StatusEmpty:
		return "EMPTY"
	case paxos.StatusStarting:
		return "STARTING"
	case paxos.StatusRecovering:
		return "RECOVERING"
	case paxos.StatusVoting:
		return "VOTING"
	}
	return fmt.Sprintf("UNKNOWN(%d)", s)
}

// writeTable prints r for a person.
func (r *replicaReport) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "replica\t%s\n", r.Dir)
	fmt.Fprintf(tw, "replica ID\t%d\n", r.Replica)
	fmt.Fprintf(tw, "cluster ID\t%d\n", r.Cluster)
	fmt.Fprintf(tw, "status\t%s\n", r.Status)
	fmt.Fprintf(tw, "promised\t%s (round.replica)\n", r.Promised)
	fmt.Fprintf(tw, "begin / end\t%d / %d\n", r.Begin, r.End)
	fmt.Fprintf(tw, "learned to\t%d\n", r.LearnedTo)
	fmt.Fprintf(tw, "positions\t%d stored, %d learned, %d unlearned, %d holes\n", r.Stored, r.Learned, r.Unlearned, r.Holes)
	var ms []string
	for _, m := range r.Members {
		role := "voter"
		if !m.Voter {
			role = "learner"
		}
		ms = append(ms, fmt.Sprintf("%d@%s (%s)", m.ID, m.Addr, role))
	}
	if len(ms) == 0 {
		ms = []string{"none yet"}
	}
	fmt.Fprintf(tw, "membership\tat position %d: %s\n", r.ConfigAt, strings.Join(ms, ", "))
	fmt.Fprintf(tw, "size on disk\t%d bytes allocated (LSM %d, value log %d); entries %d bytes\n", r.DiskBytes, r.LSMBytes, r.VlogBytes, r.DataBytes)
	tw.Flush()
}

// cmdLogInitialize runs "regent log initialize": the explicit
// initialisation of a log whose masters run with log_auto_initialize =
// false, as "mesos-log initialize" is. Run it on every master's replica
// while the masters are stopped.
func cmdLogInitialize(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	workDir := fs.String("work_dir", "", "the master's work_dir; the replica is its "+ReplicatedLogDir+" directory (required)")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if *workDir == "" {
		return e.usageError("-work_dir is required")
	}
	dir := filepath.Join(*workDir, ReplicatedLogDir)
	id, err := initializeReplica(dir, hclog.NewNullLogger())
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.cmd.path(), err)
		return ExitFailure
	}
	fmt.Fprintf(e.Stdout, "initialized replica %d at %s: it votes once every master's replica is initialized and they have met\n", id, dir)
	return ExitOK
}

// errNotEmpty is what initializeReplica returns for a replica that holds
// anything: initialising is only for new, EMPTY replicas.
var errNotEmpty = errors.New("replica is not empty")

// initializeReplica initialises the EMPTY replica in dir (creating the store
// if needed) and returns its ReplicaID. It does exactly what the core's
// two-phase auto-initialisation does in its first phase: it persists status
// STARTING. A STARTING replica goes on to VOTING (with the initialisation set
// it saw) once every expected replica reports STARTING or VOTING, whether or
// not AutoInitialize is set; see replog/paxos (recover.go). So no replica
// votes while another is still EMPTY, and initialising every master's
// replica, then starting the masters, initialises the log. A replica with a
// status other than EMPTY, or with any stored position, is refused
// (errNotEmpty): its history must not be forgotten.
func initializeReplica(dir string, log hclog.Logger) (paxos.ReplicaID, error) {
	st, err := badgerstore.Open(dir, badgerstore.Options{Logger: log, GCInterval: -1})
	if err != nil {
		var inUse *replog.InUseError
		if errors.As(err, &inUse) {
			return 0, fmt.Errorf("the replica at %s is in use by a running master; stop it first", dir)
		}
		return 0, fmt.Errorf("initialize: %w", err)
	}
	defer st.Close()
	hs, err := st.InitialState()
	if err != nil {
		return 0, fmt.Errorf("initialize: %w", err)
	}
	if hs.Replica != 0 && hs.Status != paxos.StatusEmpty && hs.Status != 0 {
		return 0, fmt.Errorf("initialize %s: %w: replica %d is %s", dir, errNotEmpty, hs.Replica, statusName(hs.Status))
	}
	if last, ok, err := st.LastPosition(); err != nil {
		return 0, fmt.Errorf("initialize: %w", err)
	} else if ok {
		return 0, fmt.Errorf("initialize %s: %w: it stores positions up to %d", dir, errNotEmpty, last)
	}
	if hs.Replica == 0 {
		hs = paxos.HardState{Replica: newReplicaID()}
	}
	hs.Status = paxos.StatusStarting
	if err := st.Save(replog.Batch{HardState: &hs, Sync: true}); err != nil {
		return 0, fmt.Errorf("initialize: %w", err)
	}
	if err := st.Close(); err != nil {
		return 0, fmt.Errorf("initialize: %w", err)
	}
	return hs.Replica, nil
}

// newReplicaID draws a non-zero random ReplicaID, as the node does for an
// empty store.
func newReplicaID() paxos.ReplicaID {
	var b [8]byte
	for {
		_, _ = crand.Read(b[:]) // never fails on Linux (Go 1.24+ crashes instead)
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return paxos.ReplicaID(v)
		}
	}
}
