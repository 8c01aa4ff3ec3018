package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Master is one master process. Build it with [New], run it with
// [Master.Run].
type Master struct {
	cfg      Config
	log      Log
	logger   hclog.Logger
	start    time.Time
	proposer string
	reg      *registrar
	metrics  *metrics
	handler  http.Handler
	started  atomic.Bool

	mu        sync.RWMutex
	leading   bool
	recovered bool
	exiting   bool
	self      MasterInfo // filled in by Run once the listener is bound
	elected   time.Time
	// epoch names this master's current leadership: one past the end of
	// the log when it was elected, where its leader record goes. Set with
	// leading; see LeaderEpochHeader.
	epoch uint64

	// lapsedAt is when the leader's lease was first seen lapsed, zero while
	// it is live; only the control goroutine uses it. lapses counts the
	// lapses the leader rode out (metrics).
	lapsedAt time.Time
	lapses   atomic.Int64
}

// New builds a master over lg. It validates cfg and starts nothing.
func New(cfg Config, lg Log) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new master: %w", err)
	}
	if lg == nil {
		return nil, errors.New("new master: nil log")
	}
	cfg = cfg.withDefaults()
	m := &Master{
		cfg:    cfg,
		log:    lg,
		logger: cfg.Logger,
		start:  cfg.Now(),
	}
	m.proposer = m.cfg.ID + "@" + strconv.FormatInt(m.start.UnixNano(), 10)
	m.metrics = newMetrics(m)
	m.reg = newRegistrar(&m.cfg, lg, m.proposer, m.metrics.observeStore, m.metrics.stages)
	m.handler = m.routes()
	m.self = m.masterInfo(cfg.IP, cfg.Port)
	return m, nil
}

// Handler returns the master's HTTP API. [Master.Run] serves it on the
// configured address; tests may call it directly.
func (m *Master) Handler() http.Handler { return m.handler }

// Info returns this master's MasterInfo (the advertised identity; the port
// is known once Run has bound its listener).
func (m *Master) Info() MasterInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.self
}

// Run serves the API and follows or leads until ctx is done (it then
// returns nil) or the master must exit (it returns an [*ExitError]). Run
// starts the HTTP server, the log reader and, while leading, the proposer,
// and waits for all of them before it returns. Run may be called once.
func (m *Master) Run(ctx context.Context) error {
	if m.started.Swap(true) {
		return errors.New("run master: already run")
	}
	ln := m.cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(m.cfg.IP, strconv.Itoa(m.cfg.Port)))
		if err != nil {
			return &ExitError{Code: ExitTransient, Reason: "Failed to bind the API address", Err: fmt.Errorf("listen: %w", err)}
		}
	}
	port := m.cfg.Port
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	m.mu.Lock()
	m.self = m.masterInfo(m.cfg.IP, port)
	m.mu.Unlock()
	if m.cfg.EnablePProf {
		enableProfiling()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fatal := make(chan error, 3)
	var wg sync.WaitGroup
	srv := &http.Server{
		Handler:           m.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          m.logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatal <- &ExitError{Code: ExitTransient, Reason: "Failed to serve the API", Err: fmt.Errorf("serve: %w", err)}
		}
	})
	wg.Go(func() {
		if err := m.reg.follow(runCtx); err != nil {
			fatal <- exitFor(reasonLogFailed, err)
		}
	})
	m.logger.Info("master started", "id", m.cfg.ID, "addr", ln.Addr().String(),
		"advertise", net.JoinHostPort(m.self.Address.IP, strconv.Itoa(m.self.Port)))
	if m.cfg.Ready != nil {
		m.cfg.Ready()
	}
	if m.cfg.Heartbeat != nil {
		// Heartbeats run on their own ticker so a long election or
		// recovery does not starve the supervisor's watchdog.
		wg.Go(func() {
			t := time.NewTicker(m.cfg.CheckInterval)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					m.heartbeat(m.log.Status())
				}
			}
		})
	}

	err := m.control(runCtx, fatal, &wg)
	// Nothing will be applied any more: fail whatever still waits.
	if err != nil {
		m.reg.abort(err)
	} else {
		m.reg.abort(ErrClosed)
	}
	m.mu.Lock()
	m.exiting = true
	m.mu.Unlock()
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	scancel()
	wg.Wait()
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			m.logger.Error("master exiting", "reason", ee.Reason, "exit_code", ee.Code, "error", ee.Err)
		}
		return err
	}
	m.logger.Info("master stopped")
	return nil
}

// control is the leadership loop: follow, campaign when no lease is live,
// lead, and watch the lease while leading.
func (m *Master) control(ctx context.Context, fatal <-chan error, wg *sync.WaitGroup) error {
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case <-m.reg.aborted:
			return exitFor(reasonStoreFailed, m.reg.abortErr)
		case <-t.C:
		}
		st := m.log.Status()
		if m.isLeading() {
			if err := m.checkLeadership(st); err != nil {
				return err
			}
			continue
		}
		if st.Lease > 0 && !st.Coordinator {
			continue // a live leader
		}
		if !st.Coordinator {
			// Campaign after a random delay, so masters that noticed the
			// lapse together do not duel.
			if j := m.cfg.ElectionJitter; j > 0 {
				timer := time.NewTimer(time.Duration(m.cfg.Rand.Int64N(int64(j))))
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case err := <-fatal:
					timer.Stop()
					return err
				case <-timer.C:
				}
			}
			if st = m.log.Status(); st.Lease > 0 && !st.Coordinator {
				continue
			}
		}
		ectx, cancel := context.WithTimeout(ctx, m.cfg.ElectTimeout)
		last, err := m.log.Elect(ectx)
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrCorrupt), errors.Is(err, ErrClosed), errors.Is(err, ErrIdentity):
				return exitFor(reasonContend, fmt.Errorf("elect: %w", err))
			case errors.Is(err, ErrNotElected), errors.Is(err, context.DeadlineExceeded):
				m.logger.Debug("not elected", "error", err)
			default:
				// A failed campaign is routine; the log reports its own
				// fatal errors through Read and its owner.
				m.logger.Warn("election failed", "error", err)
			}
			continue
		}
		if err := m.lead(ctx, last, fatal, wg); err != nil {
			return err
		}
	}
}

// lead makes this master the leader: it starts the proposer, writes the
// leader record and waits, within registry_fetch_timeout, until the registry
// has replayed everything through it.
func (m *Master) lead(ctx context.Context, last uint64, fatal <-chan error, wg *sync.WaitGroup) error {
	now := m.cfg.Now()
	m.mu.Lock()
	m.leading = true
	m.elected = now
	m.epoch = last + 1
	info := m.self
	m.mu.Unlock()
	info.ElectedTime = seconds(now)
	m.logger.Info("elected leader; recovering registry", "position", last)
	m.reg.startLeading(last)
	wg.Go(func() { m.reg.propose(ctx) })

	fetchStart := time.Now()
	fctx, cancel := context.WithTimeout(ctx, m.cfg.RegistryFetchTimeout)
	defer cancel()
	res := make(chan error, 1)
	wg.Go(func() { res <- m.reg.submit(fctx, Operation{Type: OpRecover, MasterInfo: &info}) })
	// Keep watching leadership and the lease while recovering.
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	var err error
wait:
	for {
		select {
		case err = <-res:
			break wait
		case e := <-fatal:
			return e
		case <-t.C:
			if e := m.checkLeadership(m.log.Status()); e != nil {
				return e
			}
		}
	}
	m.metrics.observeFetch(time.Since(fetchStart))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(fctx.Err(), context.DeadlineExceeded):
			return &ExitError{
				Code:   ExitTransient,
				Reason: fmt.Sprintf("%s: failed to perform fetch within %v (registry_fetch_timeout)", reasonRecoveryFailed, m.cfg.RegistryFetchTimeout),
				Err:    ErrFetchTimeout,
			}
		case errors.Is(err, ErrRegistrarAborted):
			return exitFor(reasonStoreFailed, m.reg.abortErr)
		}
		return exitFor(reasonRecoveryFailed, err)
	}
	var missing []string
	m.reg.view(func(r *Registry) {
		for _, c := range r.MinimumCapabilities {
			if !knownCapabilities[c.Capability] {
				missing = append(missing, c.Capability)
			}
		}
	})
	if len(missing) > 0 {
		return &ExitError{Code: ExitConfig, Reason: fmt.Sprintf("Master is missing minimum capabilities %v required by the registry", missing), Err: ErrIdentity}
	}
	m.reg.recovered()
	m.mu.Lock()
	m.recovered = true
	m.mu.Unlock()
	m.logger.Info("registry recovered; leading", "elected_time", now)
	return nil
}

// checkLeadership returns the exit a leader must take when the log no
// longer makes it coordinator, or its lease lapsed and was not renewed
// within LeaseGrace. Only the control goroutine calls it.
func (m *Master) checkLeadership(st LogStatus) error {
	if !st.Coordinator {
		return &ExitError{Code: ExitTransient, Reason: reasonLostLeadership, Err: ErrLostLeadership}
	}
	now := time.Now()
	switch {
	case st.Lease > 0 && !m.lapsedAt.IsZero():
		m.logger.Info("leader lease renewed", "lapsed_for", now.Sub(m.lapsedAt))
		m.lapsedAt = time.Time{}
	case st.Lease > 0:
	case m.lapsedAt.IsZero():
		// Leader-only requests get 503 from now on (leaseValid); writes
		// still need a quorum. Wait for a renewal before giving up.
		m.lapsedAt = now
		m.lapses.Add(1)
		m.logger.Warn("leader lease lapsed; waiting for a renewal", "lease_grace", m.cfg.LeaseGrace)
	case now.Sub(m.lapsedAt) >= m.cfg.LeaseGrace:
		return &ExitError{Code: ExitTransient, Reason: reasonLeaseExpired,
			Err: fmt.Errorf("%w: not renewed within %v (lease_grace)", ErrLeaseExpired, m.cfg.LeaseGrace)}
	}
	return nil
}

func (m *Master) isLeading() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.leading
}

// heartbeat reports a one-line status to the configured hook.
func (m *Master) heartbeat(st LogStatus) {
	if m.cfg.Heartbeat == nil {
		return
	}
	m.cfg.Heartbeat(m.statusLine(st))
}

// statusLine describes where the master stands.
func (m *Master) statusLine(st LogStatus) string {
	m.mu.RLock()
	leading, recovered := m.leading, m.recovered
	m.mu.RUnlock()
	switch {
	case leading && recovered:
		return "leading"
	case leading:
		return "leading; recovering the registry"
	}
	if l, ok := m.knownLeader(st); ok {
		return "following leader " + net.JoinHostPort(leaderHost(l), strconv.Itoa(l.Port))
	}
	return m.noLeaderReason(st)
}

// noLeaderReason says what is missing for a leader to exist.
func (m *Master) noLeaderReason(st LogStatus) string {
	if st.Quorum > 0 && st.Reachable < st.Quorum {
		return fmt.Sprintf("waiting for quorum: %d of %d replicas reachable", st.Reachable, st.Quorum)
	}
	return "no leader elected"
}

// knownLeader returns the leader this master knows of: the last leader
// record learned, provided a coordinator's lease is live and the record is
// not this process's own.
func (m *Master) knownLeader(st LogStatus) (MasterInfo, bool) {
	if st.Lease <= 0 {
		return MasterInfo{}, false
	}
	var info *MasterInfo
	m.reg.view(func(r *Registry) {
		if r.Master.Info != nil {
			i := *r.Master.Info
			info = &i
		}
	})
	if info == nil {
		return MasterInfo{}, false
	}
	self := m.Info()
	if info.Address.IP == self.Address.IP && info.Port == self.Port && info.Hostname == self.Hostname {
		return MasterInfo{}, false // our own record: a stale one from an earlier run
	}
	return *info, true
}

// leaseValid reports whether this master may serve a leader-only read now.
func (m *Master) leaseValid(st LogStatus) bool {
	return st.Coordinator && st.Lease > m.cfg.LeaseMargin
}

// masterInfo builds this master's MasterInfo for the bound port.
func (m *Master) masterInfo(bindIP string, boundPort int) MasterInfo {
	ip := m.cfg.AdvertiseIP
	if ip == "" {
		ip = bindIP
	}
	if ip == "" || net.ParseIP(ip).IsUnspecified() {
		ip = "127.0.0.1"
		if a := firstIPv4(); a != "" {
			ip = a
		}
	}
	port := m.cfg.AdvertisePort
	if port == 0 {
		port = boundPort
	}
	host := m.cfg.Hostname
	if host == "" {
		host = ip
	}
	return MasterInfo{
		ID:        m.cfg.ID,
		IP:        mesosIP(ip),
		Port:      port,
		PID:       "master@" + net.JoinHostPort(ip, strconv.Itoa(port)),
		Hostname:  host,
		Version:   m.cfg.Version,
		Address:   Address{Hostname: host, IP: ip, Port: port},
		Cluster:   m.cfg.Cluster,
		StartTime: seconds(m.start),
		Lease:     DurationInfo{Nanoseconds: int64(m.cfg.Lease)},
	}
}

// firstIPv4 returns the first non-loopback IPv4 address of the host.
func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// leaderHost is the host a redirect names: the hostname, else the IP.
func leaderHost(l MasterInfo) string {
	if l.Hostname != "" {
		return l.Hostname
	}
	return l.Address.IP
}
