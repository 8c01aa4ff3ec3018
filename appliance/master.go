package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/master"
	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/peer"
	"github.com/regent-ha/regent/supervisor"
)

// Timing of the replicated log under a master. The lease bounds failover:
// after a leader dies, the others wait for the lease it held to lapse, then
// campaign with jitter. A 10 ms tick, 50 ms heartbeats and a 250 ms lease
// give a failover near 300 ms and leave the leader four heartbeats of slack
// before a busy two-core machine costs it the lease.
const (
	logTickInterval   = 10 * time.Millisecond
	logHeartbeatTicks = 5
	logLeaseTicks     = 25
	logLease          = logLeaseTicks * logTickInterval
	electionJitter    = 60 * time.Millisecond
	masterCheck       = 10 * time.Millisecond
)

// masterMemoryLimit is the master's soft memory limit (GOMEMLIMIT overrides
// it): the collector works harder as the heap nears it, it is never a cap.
const masterMemoryLimit = 192 << 20

// minFreeBytes is the free space work_dir must have for the master to start:
// room for Badger's two memtable files and a flushed table (see
// docs/reliability.md, anomaly A2).
const minFreeBytes = 64 << 20

// checkFreeSpace returns an error naming dir when its file system has less
// than need bytes available to this process.
func checkFreeSpace(dir string, need uint64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("check free space of %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < need {
		return fmt.Errorf("%s has %d MiB free, the master needs at least %d MiB", dir, free>>20, need>>20)
	}
	return nil
}

// freeSpaceWait bounds how long a starting master waits for work_dir to have
// minFreeBytes free before it gives up, and freeSpacePoll how often it looks.
// Waiting, rather than exiting at once, keeps a supervisor from spending its
// restart budget in seconds on a disk that an operator is about to clean; the
// wait stays well below the supervisor's ready_timeout (120 s by default).
const (
	freeSpaceWait = 30 * time.Second
	freeSpacePoll = time.Second
)

// waitFreeSpace returns nil as soon as check does, and check's last error
// once wait has passed without success or ctx's error when ctx ends first.
// It logs once when it starts waiting and tells status what it waits for.
func waitFreeSpace(ctx context.Context, check func() error, wait, poll time.Duration, log hclog.Logger, status func(string)) error {
	err := check()
	if err == nil {
		return nil
	}
	log.Warn("waiting for free space before opening the replicated log", "error", err, "max_wait", wait)
	status("waiting for free space: " + err.Error())
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped while waiting: %w)", err, ctx.Err())
		case <-deadline.C:
			return err
		case <-tick.C:
			if err = check(); err == nil {
				log.Info("free space is back; opening the replicated log")
				return nil
			}
		}
	}
}

// ReplicatedLogDir is the directory of the replica's store under work_dir,
// as in Mesos.
const ReplicatedLogDir = "replicated_log"

// cmdMaster runs "regent master": one fail-fast master process, normally
// started by "regent run". It exits 0 when stopped, 78 when it must not be
// restarted (bad configuration, corrupt data, identity mismatch) and 1 on
// any other condition it cannot safely continue from, after logging one line
// that names the reason and handing it to its supervisor.
func cmdMaster(ctx context.Context, e *Env, args []string) int {
	c, _, code, ok := e.configCommand(args)
	if !ok {
		return code
	}
	log := NewLogger(LogOptions{Name: "regent", Level: c.LogLevel, JSON: c.LogJSON, Output: e.Stderr})
	if e.Getenv("GOMEMLIMIT") == "" {
		// Most of a busy master's memory is garbage from Badger's table
		// builders waiting for the collector; a soft limit keeps the
		// process near its live set (docs/performance.md, "Memory").
		debug.SetMemoryLimit(masterMemoryLimit)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	child, err := supervisor.ChildFromEnv(func() {
		log.Warn("supervisor gone; stopping")
		cancel()
	})
	if err != nil {
		log.Error("connect to the supervisor", "error", err)
		return ExitFailure
	}
	defer child.Close()

	code, reason := runMaster(ctx, c, log, child)
	if reason != "" {
		_ = child.Reason(reason)
	}
	return code
}

// runMaster opens the replica, starts the peer transport, the log node and
// the master, and runs them until ctx ends or one of them fails. It returns
// the exit code and, for a failure, the one-line reason.
func runMaster(ctx context.Context, c *Config, log hclog.Logger, child *supervisor.Child) (int, string) {
	fail := func(code int, reason string, err error) (int, string) {
		log.Error(reason, "error", err, "exit_code", code)
		return code, reason
	}

	rc := c.ReplogConfig()
	if rc.Addr == "" {
		addr, err := localPeerAddr(c.Master.Masters, c.Master.PeerPort)
		if err != nil {
			return fail(ExitConfig, "cannot tell which of masters is this host", err)
		}
		rc.Addr = addr
	}
	if err := rc.Validate(); err != nil {
		return fail(ExitConfig, "invalid replicated log configuration", err)
	}

	dir := filepath.Join(c.WorkDir, ReplicatedLogDir)
	if err := os.MkdirAll(c.WorkDir, 0o750); err != nil {
		return fail(ExitConfig, "cannot create work_dir", err)
	}
	enoughSpace := func() error { return checkFreeSpace(c.WorkDir, minFreeBytes) }
	status := func(text string) { _ = child.Status(text) }
	if err := waitFreeSpace(ctx, enoughSpace, freeSpaceWait, freeSpacePoll, log, status); err != nil {
		// Badger writes its memtables through memory-mapped files: on a
		// full disk that is a SIGBUS, not an error. Refuse to start instead,
		// with a reason the supervisor and the operator can read.
		return fail(ExitFailure, "Failed to recover the log: work_dir is out of space", err)
	}
	store, err := badgerstore.Open(dir, badgerstore.Options{Logger: log})
	if err != nil {
		var inUse *replog.InUseError
		if errors.As(err, &inUse) {
			// Transient: a previous master may still be exiting.
			return fail(ExitFailure, "Failed to recover the log: "+inUse.Error(), err)
		}
		if errors.Is(err, replog.ErrCorrupt) {
			return fail(ExitConfig, "Failed to recover the log: corrupt or incompatible replica", err)
		}
		return fail(ExitFailure, "Failed to recover the log", err)
	}
	defer func() {
		// On a full disk the store leaves Badger open rather than let its
		// memtable flush die of SIGBUS, and says so.
		if err := store.Close(); err != nil {
			log.Error("close the replicated log", "error", err)
		}
	}()

	rc.Logger = log
	rc.TickInterval = logTickInterval
	rc.HeartbeatTicks = logHeartbeatTicks
	rc.LeaseTicks = logLeaseTicks
	node, err := replog.New(rc, store)
	if err != nil {
		return fail(ExitConfig, "cannot start the replicated log", err)
	}

	pc := peer.Config{
		Logger:        log,
		Self:          node.Self,
		AdvertiseAddr: rc.Addr,
		Handler:       node.Step,
		Allow:         node.Allow,
		Secret:        []byte(c.Master.PeerSecret),
	}
	for _, a := range rc.Masters {
		if a != rc.Addr {
			pc.Peers = append(pc.Peers, a)
		}
	}
	if c.Master.TLS.CertFile != "" {
		tc, err := peer.LoadTLS(c.Master.TLS.CAFile, c.Master.TLS.CertFile, c.Master.TLS.KeyFile)
		if err != nil {
			return fail(ExitConfig, "cannot load the TLS configuration", err)
		}
		pc.TLS = tc
	}
	tr, err := peer.New(pc)
	if err != nil {
		return fail(ExitConfig, "cannot start the peer transport", err)
	}
	defer tr.Close()
	peerLn, err := net.Listen("tcp", net.JoinHostPort(c.Master.IP, strconv.Itoa(c.Master.PeerPort)))
	if err != nil {
		return fail(ExitFailure, "Failed to bind the peer address", err)
	}

	mc := c.MasterConfig()
	mc.ID = newMasterID()
	mc.Logger = log.Named("master")
	mc.Lease = logLease
	mc.CheckInterval = masterCheck
	mc.ElectionJitter = electionJitter
	var lastStatus string
	var statusMu sync.Mutex
	mc.Ready = func() { _ = child.Ready() }
	mc.Heartbeat = func(s string) {
		_ = child.Heartbeat()
		statusMu.Lock()
		changed := s != lastStatus
		lastStatus = s
		statusMu.Unlock()
		if changed {
			_ = child.Status(s)
		}
	}
	adm := newAdmin(node, c.Master.Quorum)
	mc.Extra = adm
	m, err := master.New(mc, &nodeLog{node: node, quorum: c.Master.Quorum, lease: logLease})
	if err != nil {
		return fail(ExitConfig, "invalid master configuration", err)
	}
	adm.setAPI(m.Handler())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		if err := tr.Serve(peerLn); err != nil && runCtx.Err() == nil {
			errs <- fmt.Errorf("serve peers: %w", err)
		}
	})
	wg.Go(func() {
		if err := node.Run(runCtx, tr); err != nil && runCtx.Err() == nil {
			errs <- fmt.Errorf("replicated log: %w", err)
		}
	})
	wg.Go(func() {
		errs <- m.Run(runCtx)
	})
	log.Info("master starting", "id", mc.ID, "replica", node.ID(), "peer_addr", rc.Addr,
		"masters", rc.Masters, "quorum", rc.Quorum)

	var first error
	select {
	case first = <-errs:
	case <-ctx.Done():
	}
	stop()
	tr.Close()
	wg.Wait()
	if ctx.Err() != nil && first == nil {
		log.Info("master stopped on request")
		return ExitOK, ""
	}
	var xe *master.ExitError
	switch {
	case first == nil:
		log.Info("master stopped")
		return ExitOK, ""
	case errors.As(first, &xe):
		return fail(xe.Code, xe.Reason, xe.Err)
	case errors.Is(first, replog.ErrCorrupt):
		return fail(ExitConfig, "Failed to recover the log: corrupt replica", first)
	default:
		return fail(ExitFailure, "replicated log failed", first)
	}
}

// newMasterID draws a master ID: a new one per process, as Mesos does.
func newMasterID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// localPeerAddr finds the entry of masters that names this host: an address
// of a local interface with the peer port. It is how a master configured
// with ip = 0.0.0.0 and no advertised address knows which entry it is.
func localPeerAddr(masters []string, peerPort int) (string, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("list interface addresses: %w", err)
	}
	var local []string
	for _, a := range ifAddrs {
		if ipn, ok := a.(*net.IPNet); ok {
			local = append(local, ipn.IP.String())
		}
	}
	var found []string
	for _, m := range masters {
		host, port, err := net.SplitHostPort(m)
		if err != nil || port != strconv.Itoa(peerPort) {
			continue
		}
		ips, err := net.LookupHost(host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			if slices.Contains(local, ip) {
				found = append(found, m)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no entry of masters %v is a local address with peer_port %d; set advertise_ip or advertise_peer", masters, peerPort)
	default:
		return "", fmt.Errorf("entries %v of masters are all local; set advertise_ip or advertise_peer", found)
	}
}
