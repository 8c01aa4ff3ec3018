package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer/peerpb"
)

// unreachableWarnAfter is how long attempts to reach a peer fail (at Debug)
// before one Warn says so.
const unreachableWarnAfter = 10 * time.Second

// peerConn is the outgoing side of one configured peer: its bounded queue
// and the loop that keeps a stream to it and drains the queue into frames.
type peerConn struct {
	t    *Transport
	addr string
	cc   *grpc.ClientConn

	id        atomic.Uint64          // the ReplicaID announced in the last welcome
	connected atomic.Bool            // the stream is up and the handshake done
	refusal   atomic.Pointer[string] // the last handshake refusal since the stream was last up; nil if none

	mu     sync.Mutex
	queue  [][]byte      // encoded messages waiting, oldest first
	qbytes int           // bytes in queue
	spare  [][]byte      // the previous queue's array, reused
	wake   chan struct{} // size 1: the queue went from empty to non-empty
	kick   chan struct{} // size 1: the peer dialed us, so retry at once

	// Only the connection loop touches these.
	lastRefusal string // the last refusal logged, to log each once
	wasUp       bool   // logged as connected since the last disconnect log

	sentMsgs, sentBytes prometheus.Counter
	sentFrames          prometheus.Counter
	failures            prometheus.Counter
	connGauge           prometheus.Gauge
}

func newPeerConn(t *Transport, addr string, cc *grpc.ClientConn) *peerConn {
	return &peerConn{
		t:          t,
		addr:       addr,
		cc:         cc,
		wake:       make(chan struct{}, 1),
		kick:       make(chan struct{}, 1),
		sentMsgs:   t.metrics.sentMsgs.WithLabelValues(addr),
		sentBytes:  t.metrics.sentBytes.WithLabelValues(addr),
		sentFrames: t.metrics.sentFrames.WithLabelValues(addr),
		failures:   t.metrics.connectFailures.WithLabelValues(addr),
		connGauge:  t.metrics.connected.WithLabelValues(addr),
	}
}

// enqueue queues one encoded message, or drops and counts it when the queue
// is full. b is never modified.
func (p *peerConn) enqueue(b []byte) {
	p.mu.Lock()
	if len(p.queue) >= p.t.cfg.QueueSize || (len(p.queue) > 0 && p.qbytes+len(b) > p.t.cfg.QueueBytes) {
		p.mu.Unlock()
		p.t.metrics.drop(p.addr, dropQueueFull, 1, len(b))
		return
	}
	p.queue = append(p.queue, b)
	p.qbytes += len(b)
	first := len(p.queue) == 1
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// take removes and returns everything queued. The caller hands the slice
// back with recycle.
func (p *peerConn) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue, p.spare = p.spare[:0], nil
	p.qbytes = 0
	return q
}

// recycle keeps q's array for the next take, without its references.
func (p *peerConn) recycle(q [][]byte) {
	clear(q)
	p.mu.Lock()
	if p.spare == nil || cap(q) > cap(p.spare) {
		p.spare = q[:0]
	}
	p.mu.Unlock()
}

// discardQueue drops whatever is queued, counting it (at Close).
func (p *peerConn) discardQueue() {
	q := p.take()
	if n := len(q); n > 0 {
		size := 0
		for _, b := range q {
			size += len(b)
		}
		p.t.metrics.drop(p.addr, dropClosed, n, size)
	}
}

// run keeps a stream to the peer until ctx ends: connect, handshake, send,
// and after any failure wait a back-off with jitter and start again.
func (p *peerConn) run(ctx context.Context) {
	log := p.t.log.With("peer", p.addr)
	attempt := 0
	var failingSince time.Time // start of the current run of failed attempts
	warned := false            // "cannot reach peer" logged for this run
	kicked := false            // the peer dialed us: wait for the channel this time
	for ctx.Err() == nil {
		up, err := p.session(ctx, kicked)
		kicked = false
		if ctx.Err() != nil {
			break
		}
		if up {
			attempt = 0 // it worked: the next attempt starts from BackoffInitial
			failingSince = time.Time{}
		} else {
			p.failures.Inc()
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
		}
		var ref *refusal
		switch {
		case errors.As(err, &ref):
			p.t.metrics.refusals.WithLabelValues(refusedBySelf).Inc()
			r := "refused: " + ref.reason
			p.refusal.Store(&r)
			if ref.reason != p.lastRefusal {
				p.lastRefusal = ref.reason
				log.Error("refused peer", "reason", ref.reason)
			}
		case isRefusal(err):
			reason := status.Convert(err).Message()
			p.t.metrics.refusals.WithLabelValues(refusedByPeer).Inc()
			r := "refused by peer: " + reason
			p.refusal.Store(&r)
			if reason != p.lastRefusal {
				p.lastRefusal = reason
				log.Error("refused by peer", "reason", reason)
			}
		case p.wasUp:
			p.wasUp = false
			log.Warn("lost peer stream", "error", err)
		case !warned && time.Since(failingSince) >= unreachableWarnAfter:
			// Once per outage, so a wrong address or a peer that is down
			// for good is visible without a line per attempt.
			warned = true
			log.Warn("cannot reach peer", "since", failingSince, "error", err)
		default:
			log.Debug("peer connection attempt failed", "error", err)
		}
		if up {
			warned = false
		}
		p.t.notifyState()
		wait := backoffDelay(p.t.cfg.BackoffInitial, p.t.cfg.BackoffMax, attempt)
		attempt++
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		case <-p.kick:
			// The peer just reached us: it is back, so do not sit out the
			// rest of a back-off that may be seconds long. A replica that
			// restarted must hear the coordinator's heartbeats before its
			// start-up lease lapses, or it campaigns against a live leader.
			timer.Stop()
			attempt = 0
			kicked = true
		}
	}
	p.setConnected(false)
}

// redial asks p's connection loop to retry now if it is waiting out a
// back-off. It never blocks.
func (p *peerConn) redial() {
	if p.connected.Load() {
		return
	}
	// gRPC's own back-off for the channel, reset only while the channel is
	// in it: ResetConnectBackoff iterates the channel's subchannel map
	// after releasing its lock (grpc-go 1.85), which races with the map's
	// writes while the channel is first connecting, a fatal concurrent map
	// access. Past the first attempt the map no longer changes.
	if p.cc.GetState() == connectivity.TransientFailure {
		p.cc.ResetConnectBackoff()
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// isRefusal reports whether err is a peer's handshake refusal.
func isRefusal(err error) bool {
	switch status.Code(err) {
	case codes.PermissionDenied, codes.FailedPrecondition:
		return true
	}
	return false
}

// backoffDelay is the wait before attempt n (0-based): T = initial·2ⁿ capped
// at maxWait, then a uniform draw from [T/2, T), so that replicas restarted
// together do not dial in lockstep.
func backoffDelay(initial, maxWait time.Duration, n int) time.Duration {
	t := maxWait
	if n < 32 && initial<<n > 0 && initial<<n < maxWait {
		t = initial << n
	}
	half := t / 2
	if half <= 0 {
		return t
	}
	return half + rand.N(t-half)
}

func (p *peerConn) setConnected(up bool) {
	if up {
		p.refusal.Store(nil)
	}
	if p.connected.Swap(up) != up {
		if up {
			p.connGauge.Set(1)
		} else {
			p.connGauge.Set(0)
		}
		p.t.notifyState()
	}
}

// session runs one stream: it dials (through the ClientConn), handshakes,
// then sends until the stream fails or ctx ends. up reports whether the
// handshake succeeded. A *refusal error means this replica refused the peer.
//
// When waitReady is set (the peer has just dialed us), opening the stream
// waits, within the handshake timeout, for gRPC's channel to reconnect
// instead of failing at once on a channel still in its back-off.
func (p *peerConn) session(ctx context.Context, waitReady bool) (up bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The handshake must finish in time; the timer is stopped once it has.
	timer := time.AfterFunc(p.t.cfg.HandshakeTimeout, cancel)
	stream, err := peerpb.NewPeerClient(p.cc).Stream(sctx, grpc.WaitForReady(waitReady))
	if err != nil {
		timer.Stop()
		return false, fmt.Errorf("open stream: %w", err)
	}
	hello := p.t.hello(labelHello, nil)
	if err := stream.Send(&peerpb.Frame{Hello: hello}); err != nil {
		timer.Stop()
		return false, fmt.Errorf("send hello: %w", recvErr(stream, err))
	}
	welcome, err := stream.Recv()
	if err != nil {
		timer.Stop()
		return false, fmt.Errorf("receive welcome: %w", err)
	}
	if ref := p.t.check(welcome.GetHello(), labelWelcome, hello.GetNonce()); ref != nil {
		// Tell the listener why, so its operator sees it too; best effort.
		// The proof shows the refusal comes from a holder of the secret.
		if stream.Send(&peerpb.Frame{
			Proof:   proofMAC(p.t.cfg.Secret, hello.GetNonce(), welcome.GetHello().GetNonce()),
			Refused: ref.reason,
		}) == nil && stream.CloseSend() == nil {
			// Cancelling the stream could discard the frame before it is
			// written: wait for the listener to end the stream (or for the
			// handshake timer).
			_, _ = stream.Recv()
		}
		timer.Stop()
		return false, ref
	}
	proof := proofMAC(p.t.cfg.Secret, hello.GetNonce(), welcome.GetHello().GetNonce())
	if proof != nil {
		if err := stream.Send(&peerpb.Frame{Proof: proof}); err != nil {
			timer.Stop()
			return false, fmt.Errorf("send proof: %w", recvErr(stream, err))
		}
	}
	if !timer.Stop() {
		return false, fmt.Errorf("handshake: %w", context.DeadlineExceeded)
	}

	id := paxos.ReplicaID(welcome.GetHello().GetReplica())
	p.id.Store(uint64(id))
	p.t.warnDuplicateID(p, id)
	p.setConnected(true)
	defer p.setConnected(false)
	p.lastRefusal = ""
	if !p.wasUp {
		p.wasUp = true
		p.t.log.Info("connected to peer", "peer", p.addr, "replica", id)
	}

	// The listener sends nothing after the welcome: Recv returns only when
	// the stream ends, and then cancels the send loop.
	done := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		cancel()
		done <- err
	}()
	err = p.sendLoop(sctx, stream)
	cancel()
	if rerr := <-done; rerr != nil && !errors.Is(rerr, io.EOF) && status.Code(rerr) != codes.Canceled {
		err = rerr
	}
	return true, err
}

// recvErr returns the stream's status when Send failed with io.EOF (gRPC's
// way of saying the server ended the stream), else err.
func recvErr(stream grpc.BidiStreamingClient[peerpb.Frame, peerpb.Welcome], err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// sendLoop drains the queue into frames until the stream fails or ctx ends.
// Each wake-up sends everything queued at that moment, split only at
// MaxFrameBytes, so there is no waiting to fill a batch.
func (p *peerConn) sendLoop(ctx context.Context, stream grpc.BidiStreamingClient[peerpb.Frame, peerpb.Welcome]) error {
	frame := &peerpb.Frame{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.wake:
		}
		q := p.take()
		for rest := q; len(rest) > 0; {
			n, size := 0, 0
			for n < len(rest) && (n == 0 || size+len(rest[n]) <= p.t.cfg.MaxFrameBytes) {
				size += len(rest[n])
				n++
			}
			// gRPC has encoded the frame when Send returns (no stats
			// handlers are installed), so frame and its slice are reused.
			frame.Msgs = rest[:n]
			if err := stream.Send(frame); err != nil {
				dropped := 0
				for _, b := range rest {
					dropped += len(b)
				}
				p.t.metrics.drop(p.addr, dropSendFailed, len(rest), dropped)
				frame.Msgs = nil
				p.recycle(q)
				// The reader goroutine reports the stream's status.
				return fmt.Errorf("send frame: %w", err)
			}
			p.sentMsgs.Add(float64(n))
			p.sentBytes.Add(float64(size))
			p.sentFrames.Inc()
			rest = rest[n:]
		}
		frame.Msgs = nil
		p.recycle(q)
	}
}

// warnDuplicateID warns when another configured address announced the same
// ReplicaID as p: one master listed twice (by name and by IP), or a copied
// data directory. Messages to that ReplicaID go to one of them only.
func (t *Transport) warnDuplicateID(p *peerConn, id paxos.ReplicaID) {
	for _, o := range t.peerList() {
		if o != p && paxos.ReplicaID(o.id.Load()) == id {
			t.log.Warn("two peer addresses announce one replica id", "replica", id, "peer", p.addr, "other_peer", o.addr)
		}
	}
}
