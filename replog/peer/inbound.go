package peer

import (
	"crypto/hmac"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer/peerpb"
)

// server is the listening side: it accepts the streams other replicas open
// and hands their messages to Config.Handler.
type server struct {
	peerpb.UnimplementedPeerServer
	t *Transport
}

// Stream runs one incoming stream on gRPC's goroutine: the handshake, then
// every frame's messages, in order, to Config.Handler.
func (s *server) Stream(stream grpc.BidiStreamingServer[peerpb.Frame, peerpb.Welcome]) error {
	t := s.t
	// A dialer that connects and says nothing must not hold the stream.
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	first, err := recvBy(stream, deadline)
	if err != nil {
		return err
	}
	h := first.GetHello()
	key := h.GetAddr()
	if p, ok := grpcpeer.FromContext(stream.Context()); ok && key == "" {
		key = p.Addr.String()
	}
	if ref := t.check(h, labelHello, nil); ref != nil {
		t.refuseIncoming(key, h, ref)
		return status.Error(ref.code, ref.reason)
	}
	welcome := t.hello(labelWelcome, h.GetNonce())
	if err := stream.Send(&peerpb.Welcome{Hello: welcome}); err != nil {
		return err
	}
	// A hello frame carries nothing else; anything more in it is ignored.
	frame, received := &peerpb.Frame{}, false
	if len(t.cfg.Secret) > 0 {
		if frame, err = recvBy(stream, deadline); err != nil {
			return err
		}
		received = true
		want := proofMAC(t.cfg.Secret, h.GetNonce(), welcome.GetNonce())
		if !hmac.Equal(frame.GetProof(), want) {
			ref := refuse("handshake proof from %s is invalid", h.GetAddr())
			t.refuseIncoming(key, h, ref)
			return status.Error(ref.code, ref.reason)
		}
	}
	from := paxos.ReplicaID(h.GetReplica())
	log := t.log.With("peer", h.GetAddr(), "replica", from)
	log.Debug("accepted peer stream")
	for _, p := range t.peerList() {
		if p.addr == h.GetAddr() {
			p.redial()
		}
	}

	receivedMsgs := t.metrics.receivedMsgs.WithLabelValues(h.GetAddr())
	receivedBytes := t.metrics.receivedBytes.WithLabelValues(h.GetAddr())
	accepted := false
	for {
		if reason := frame.GetRefused(); reason != "" {
			t.metrics.refusals.WithLabelValues(refusedByPeer).Inc()
			if t.refused.shouldLog(key, reason) {
				log.Error("refused by peer", "reason", reason)
			}
			t.notifyState()
			return nil
		}
		if received && !accepted {
			// The dialer did not refuse us: a later refusal is news.
			accepted = true
			t.refused.forget(key)
		}
		size := 0
		delivered := 0
		for _, b := range frame.GetMsgs() {
			size += len(b)
			// gRPC unmarshals every frame into new buffers that nothing
			// else holds: the message may keep b rather than a copy.
			m, err := replog.DecodeMessageOwned(b)
			if err != nil {
				t.metrics.drop(h.GetAddr(), dropUndecodable, 1, len(b))
				log.Debug("dropped undecodable message", "error", err)
				continue
			}
			// The handshake authenticated the stream, not the messages'
			// From: a message claiming another sender is dropped.
			if m.From == 0 {
				m.From = from
			} else if m.From != from {
				t.metrics.drop(h.GetAddr(), dropWrongSender, 1, len(b))
				log.Debug("dropped message from another sender", "from", m.From)
				continue
			}
			t.cfg.Handler(m)
			delivered++
		}
		if delivered > 0 {
			receivedMsgs.Add(float64(delivered))
			receivedBytes.Add(float64(size))
		}
		received = true
		if frame, err = stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			log.Debug("peer stream ended", "error", err)
			return err
		}
	}
}

// refuseIncoming counts a refused incoming handshake and logs it once per
// peer and reason.
func (t *Transport) refuseIncoming(key string, h *peerpb.Hello, ref *refusal) {
	t.metrics.refusals.WithLabelValues(refusedBySelf).Inc()
	if t.refused.shouldLog(key, ref.reason) {
		t.log.Warn("refused peer", "peer", key, "replica", h.GetReplica(), "reason", ref.reason)
	}
	t.notifyState()
}

// recvBy receives one frame, or fails with DeadlineExceeded at deadline. The
// Recv runs on a goroutine of its own; after a timeout it ends as soon as the
// handler returns, because gRPC then cancels the stream.
func recvBy(stream grpc.BidiStreamingServer[peerpb.Frame, peerpb.Welcome], deadline time.Time) (*peerpb.Frame, error) {
	type result struct {
		f   *peerpb.Frame
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := stream.Recv()
		ch <- result{f, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-timer.C:
		return nil, status.Error(codes.DeadlineExceeded, "peer handshake timed out")
	}
}
