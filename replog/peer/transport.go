package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer/peerpb"
)

// Flow-control windows. Static windows (which turn off gRPC's bandwidth
// estimation) let a burst of writes go out without waiting for window
// updates, and avoid the estimator's pings on every frame.
const (
	streamWindow = 4 << 20
	connWindow   = 8 << 20
)

// Keepalive. The dialer is the side that sends, so it needs to notice a dead
// listener fast: gRPC pings from a client at most every 10s, but keepalive
// also sets TCP_USER_TIMEOUT to clientPingTimeout, so unacknowledged frames
// to a dead host fail the stream within it. The listener pings every
// serverPingTime to find dead dialers.
const (
	clientPingTime    = 10 * time.Second
	clientPingTimeout = 2 * time.Second
	serverPingTime    = 2 * time.Second
	serverPingTimeout = 2 * time.Second
	minClientPingTime = 5 * time.Second // enforcement; below clientPingTime
	maxStreamsPerConn = 16
)

// frameOverhead is room for the protobuf framing around MaxFrameBytes of
// messages.
const frameOverhead = 64 << 10

var _ replog.Transport = (*Transport)(nil)

// Transport carries paxos messages to and from the other replicas. It
// implements [replog.Transport].
//
// Goroutines: New starts one per configured peer (its connection loop, which
// dials, handshakes and sends), AddPeer one per peer it adds, and each live outgoing stream has one more
// that waits for the stream's end. Serve runs the gRPC server on the caller's
// goroutine; gRPC runs each incoming stream on a goroutine of its own, which
// calls Config.Handler, and the handshake's receives on that stream run on a
// short-lived goroutine so they can time out. gRPC adds its own per
// connection (reader, writer, keepalive). Close stops all of them and waits
// for them; gRPC's connection goroutines and a timed-out handshake receive
// end moments after, once their sockets are closed.
type Transport struct {
	cfg     Config
	log     hclog.Logger
	metrics *metrics
	srv     *grpc.Server
	peers   atomic.Pointer[[]*peerConn] // copy on write: New sets it, AddPeer replaces it
	addMu   sync.Mutex                  // serialises AddPeer, and AddPeer with Close
	refused refusalLog                  // refusals this replica logged for incoming peers

	ctx    context.Context // cancelled by Close; ends the connection loops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the connection loops

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	stateMu sync.Mutex
	stateCh chan struct{} // closed and replaced whenever a connection attempt ends or a stream comes up
}

// changed returns a channel closed at the next change of connection state
// (a stream up or down, an attempt failed or refused).
func (t *Transport) changed() <-chan struct{} {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	return t.stateCh
}

func (t *Transport) notifyState() {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	close(t.stateCh)
	t.stateCh = make(chan struct{})
}

// New builds a transport and starts dialing cfg.Peers. It does not listen:
// call [Transport.Serve] with the peer listener.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("peer config: %w", err)
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register peer metrics: %w", err)
	}
	t := &Transport{
		cfg:     cfg,
		log:     cfg.Logger.Named("peer"),
		metrics: m,
		stateCh: make(chan struct{}),
	}
	if cfg.TLS == nil && len(cfg.Secret) == 0 {
		t.log.Warn("peer traffic is neither authenticated nor encrypted: set peer_secret or tls")
	}
	t.srv = grpc.NewServer(t.serverOptions()...)
	peerpb.RegisterPeerServer(t.srv, &server{t: t})

	dialOpts := t.dialOptions()
	var peers []*peerConn
	for _, addr := range cfg.Peers {
		// passthrough: the address is dialed as given on each attempt, so a
		// name is resolved again on reconnect, without a resolver goroutine.
		cc, err := grpc.NewClient("passthrough:///"+addr, dialOpts...)
		if err != nil {
			for _, p := range peers {
				_ = p.cc.Close()
			}
			m.unregister()
			return nil, fmt.Errorf("peer %s: %w", addr, err)
		}
		peers = append(peers, newPeerConn(t, addr, cc))
	}
	t.peers.Store(&peers)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	for _, p := range peers {
		t.wg.Go(func() { p.run(t.ctx) })
	}
	return t, nil
}

func (t *Transport) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(t.cfg.MaxFrameBytes + frameOverhead),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: serverPingTime, Timeout: serverPingTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPingTime, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(t.cfg.HandshakeTimeout),
		// Close must not return while a handler may still call
		// Config.Handler.
		grpc.WaitForHandlers(true),
	}
	if t.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.cfg.TLS)))
	}
	return opts
}

func (t *Transport) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if t.cfg.TLS != nil {
		creds = credentials.NewTLS(t.cfg.TLS)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(streamWindow),
		grpc.WithStaticConnWindowSize(connWindow),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: clientPingTime, Timeout: clientPingTimeout, PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  t.cfg.BackoffInitial,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   t.cfg.BackoffMax,
			},
			MinConnectTimeout: t.cfg.HandshakeTimeout,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(t.cfg.MaxFrameBytes+frameOverhead),
			grpc.MaxCallRecvMsgSize(frameOverhead),
		),
		grpc.WithNoProxy(), // peers are never reached through an HTTP proxy
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
		grpc.WithIdleTimeout(0), // the stream is long-lived; never go idle
	}
}

// Serve accepts peer connections on lis until Close, and returns nil then;
// otherwise it returns the listener's error. It blocks.
func (t *Transport) Serve(lis net.Listener) error {
	if t.closed.Load() {
		_ = lis.Close()
		return nil
	}
	err := t.srv.Serve(lis)
	if t.closed.Load() || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve peers on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Send encodes msgs and queues each for its destination: every connected
// peer when To is 0, else the peer that announced that ReplicaID (dropped and
// counted if none did). It never blocks on the network and keeps no
// reference to msgs. Safe for concurrent use.
func (t *Transport) Send(msgs []paxos.Message) {
	for i := range msgs {
		m := &msgs[i]
		b := replog.EncodeMessage(*m)
		switch {
		case t.closed.Load():
			t.metrics.drop(unknownPeer, dropClosed, 1, len(b))
		case len(b) > t.cfg.MaxFrameBytes:
			t.metrics.drop(unknownPeer, dropTooLarge, 1, len(b))
			t.log.Debug("message too large to send", "type", m.Type, "bytes", len(b), "max_frame_bytes", t.cfg.MaxFrameBytes)
		case m.To == 0:
			// The encoding is shared by every queue: it is never modified.
			for _, p := range t.peerList() {
				if p.connected.Load() {
					p.enqueue(b)
				}
			}
		default:
			if p := t.peerByID(m.To); p != nil {
				p.enqueue(b)
			} else {
				t.metrics.drop(unknownPeer, dropUnknownPeer, 1, len(b))
				t.log.Trace("no peer with replica id", "replica", m.To, "type", m.Type)
			}
		}
	}
}

// peerByID returns the peer that announced id, preferring a connected one,
// or nil.
func (t *Transport) peerByID(id paxos.ReplicaID) *peerConn {
	var found *peerConn
	for _, p := range t.peerList() {
		if paxos.ReplicaID(p.id.Load()) != id {
			continue
		}
		if p.connected.Load() {
			return p
		}
		if found == nil {
			found = p
		}
	}
	return found
}

// Peers reports every configured peer: its address, the ReplicaID it
// announced in its last handshake (0 before the first), whether its
// outgoing stream is up, and the last handshake refusal since it was up. Safe for concurrent use.
func (t *Transport) Peers() []replog.Peer {
	peers := t.peerList()
	out := make([]replog.Peer, len(peers))
	for i, p := range peers {
		out[i] = replog.Peer{ID: paxos.ReplicaID(p.id.Load()), Addr: p.addr, Connected: p.connected.Load()}
		if r := p.refusal.Load(); r != nil {
			out[i].Refusal = *r
		}
	}
	return out
}

// peerList returns the peers dialed so far. The slice is never modified.
func (t *Transport) peerList() []*peerConn { return *t.peers.Load() }

// AddPeer starts dialing addr, a peer address not configured at New (a
// master added at runtime, or a member learned from the log). A peer already
// dialed is left alone. It does not block on the network. Safe for
// concurrent use; it fails once Close has been called.
func (t *Transport) AddPeer(addr string) error {
	if addr == "" {
		return errors.New("add peer: empty address")
	}
	t.addMu.Lock()
	defer t.addMu.Unlock()
	if t.closed.Load() {
		return errors.New("add peer: transport closed")
	}
	old := t.peerList()
	for _, p := range old {
		if p.addr == addr {
			return nil
		}
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, t.dialOptions()...)
	if err != nil {
		return fmt.Errorf("add peer %s: %w", addr, err)
	}
	p := newPeerConn(t, addr, cc)
	peers := append(slices.Clone(old), p)
	t.peers.Store(&peers)
	t.log.Info("dialing new peer", "peer", addr)
	t.wg.Go(func() { p.run(t.ctx) })
	return nil
}

// Close stops the listener, every stream and every goroutine the transport
// started, and waits for them; no Handler call starts after it returns.
// Messages still queued are dropped. Idempotent.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.addMu.Lock()
		t.closed.Store(true)
		t.addMu.Unlock()
		t.cancel()
		t.srv.Stop()
		t.wg.Wait()
		var errs []error
		for _, p := range t.peerList() {
			if err := p.cc.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close connection to %s: %w", p.addr, err))
			}
			p.discardQueue()
		}
		t.metrics.unregister()
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// refusalLog remembers the last refusal logged per peer key, so a peer that
// keeps retrying is logged once per distinct reason, not once per attempt.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]string
}

// maxRefusalKeys bounds the memory a stream of strangers can take; past it,
// refusals of new keys are no longer logged (still counted).
const maxRefusalKeys = 1024

// shouldLog records reason for key and reports whether it is new.
func (r *refusalLog) shouldLog(key, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[string]string)
	}
	prev, ok := r.last[key]
	if ok && prev == reason {
		return false
	}
	if !ok && len(r.last) >= maxRefusalKeys {
		return false
	}
	r.last[key] = reason
	return true
}

// forget clears key after a successful handshake, so a later refusal is
// logged again.
func (r *refusalLog) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, key)
}
