package peer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a message is dropped, the "reason" label of
// regent_peer_dropped_messages_total.
const (
	dropQueueFull   = "queue_full"   // the peer's queue was full
	dropUnknownPeer = "unknown_peer" // no peer has the destination ReplicaID
	dropTooLarge    = "too_large"    // larger than MaxFrameBytes
	dropSendFailed  = "send_failed"  // in a frame whose stream broke
	dropClosed      = "closed"       // sent after Close
	dropUndecodable = "undecodable"  // received, but the codec refused it
	dropWrongSender = "wrong_sender" // received with From not the handshake's ReplicaID
)

// Who refused a handshake, the "by" label of
// regent_peer_handshake_refusals_total.
const (
	refusedBySelf = "self" // this replica refused a peer
	refusedByPeer = "peer" // a peer refused this replica
)

// unknownPeer is the peer label of drops with no peer.
const unknownPeer = "none"

// metrics are the transport's Prometheus collectors. They exist (and count)
// whether or not they are registered.
type metrics struct {
	reg           prometheus.Registerer
	sentMsgs      *prometheus.CounterVec
	sentBytes     *prometheus.CounterVec
	sentFrames    *prometheus.CounterVec
	receivedMsgs  *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	droppedMsgs   *prometheus.CounterVec
	droppedBytes  *prometheus.CounterVec
	connected     *prometheus.GaugeVec
	refusals      *prometheus.CounterVec
	// connectFailures counts attempts that ended before the handshake
	// succeeded (refusals included).
	connectFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "regent", Subsystem: "peer", Name: name, Help: help,
		}, labels)
	}
	m := &metrics{
		reg:           reg,
		sentMsgs:      counter("sent_messages_total", "Messages written to a peer's stream.", "peer"),
		sentBytes:     counter("sent_bytes_total", "Encoded message bytes written to a peer's stream.", "peer"),
		sentFrames:    counter("sent_frames_total", "Frames (batches of messages) written to a peer's stream.", "peer"),
		receivedMsgs:  counter("received_messages_total", "Messages received from a peer and handed to the log.", "peer"),
		receivedBytes: counter("received_bytes_total", "Encoded message bytes received from a peer.", "peer"),
		droppedMsgs:   counter("dropped_messages_total", "Messages dropped, by peer and reason.", "peer", "reason"),
		droppedBytes:  counter("dropped_bytes_total", "Encoded message bytes dropped, by peer and reason.", "peer", "reason"),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "regent", Subsystem: "peer", Name: "connected",
			Help: "1 while the outgoing stream to a peer is up, else 0.",
		}, []string{"peer"}),
		refusals:        counter("handshake_refusals_total", "Handshakes refused, by who refused (self or peer).", "by"),
		connectFailures: counter("connect_failures_total", "Attempts to open a stream to a peer that failed before the handshake completed.", "peer"),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors()[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.sentMsgs, m.sentBytes, m.sentFrames, m.receivedMsgs, m.receivedBytes,
		m.droppedMsgs, m.droppedBytes, m.connected, m.refusals, m.connectFailures,
	}
}

// unregister removes the collectors from the Registerer, if any.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}

// drop counts n messages of size bytes dropped for peer.
func (m *metrics) drop(peer, reason string, n, size int) {
	m.droppedMsgs.WithLabelValues(peer, reason).Add(float64(n))
	m.droppedBytes.WithLabelValues(peer, reason).Add(float64(size))
}
