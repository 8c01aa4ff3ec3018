package peer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-ha/regent/replog/paxos"
)

// Defaults for the zero values of [Config].
const (
	DefaultQueueSize        = 4096
	DefaultQueueBytes       = 64 << 20
	DefaultMaxFrameBytes    = 64 << 20
	DefaultBackoffInitial   = 50 * time.Millisecond
	DefaultBackoffMax       = 2 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
)

// Config configures a [Transport]. Only Self and Handler are required.
type Config struct {
	// Logger receives the transport's logs; nil discards them. The
	// transport names its own sublogger ("peer").
	Logger hclog.Logger

	// Self returns this replica's current ClusterID (0 until the log is
	// initialised) and its ReplicaID (never 0). It is called at every
	// handshake and must be safe for concurrent use.
	Self func() (paxos.ClusterID, paxos.ReplicaID)

	// AdvertiseAddr is the peer address (host:port) others are told in the
	// handshake.
	AdvertiseAddr string

	// Peers are the addresses to dial: every master's peer address but this
	// one. Each gets one outgoing connection.
	Peers []string

	// Handler receives every message that arrives, one call per message. It
	// is called concurrently from the goroutines of different incoming
	// streams, must not block for long and owns the message. No call starts
	// after Close returns.
	Handler func(paxos.Message)

	// Allow decides at the handshake whether a peer may connect (in either
	// direction), typically by checking its ReplicaID and address against
	// the membership. A non-nil error refuses the peer; its text is logged
	// once and sent to the peer. Nil allows every peer that passes the
	// transport's own checks (protocol version, secret, cluster, not self).
	// It must be safe for concurrent use.
	Allow func(cluster paxos.ClusterID, id paxos.ReplicaID, addr string) error

	// TLS, if non-nil, is used for mutual TLS on both the listener and the
	// dialers (see [LoadTLS]); a peer's certificate must name the host it is
	// dialed by.
	TLS *tls.Config

	// Secret, if non-empty, authenticates handshakes with HMAC-SHA256; both
	// ends must hold the same secret. Use it when TLS is off.
	Secret []byte

	// QueueSize bounds the messages waiting for one peer (default
	// [DefaultQueueSize]); QueueBytes bounds their encoded bytes (default
	// [DefaultQueueBytes]). Past either, Send drops and counts.
	QueueSize  int
	QueueBytes int

	// MaxFrameBytes bounds one frame, and so one encoded message, in both
	// directions (default [DefaultMaxFrameBytes]). A larger message is
	// dropped and counted.
	MaxFrameBytes int

	// BackoffInitial and BackoffMax bound the wait between attempts to
	// (re)connect to a peer: it doubles from BackoffInitial up to
	// BackoffMax, with jitter (defaults [DefaultBackoffInitial],
	// [DefaultBackoffMax]).
	BackoffInitial time.Duration
	BackoffMax     time.Duration

	// HandshakeTimeout bounds connecting plus the handshake (default
	// [DefaultHandshakeTimeout]).
	HandshakeTimeout time.Duration

	// Registerer, if non-nil, gets the transport's Prometheus metrics; they
	// are unregistered by Close.
	Registerer prometheus.Registerer
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Self == nil {
		errs = append(errs, errors.New("self is required"))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler is required"))
	}
	seen := make(map[string]bool, len(c.Peers))
	for _, p := range c.Peers {
		switch {
		case p == "":
			errs = append(errs, errors.New("empty peer address"))
		case seen[p]:
			errs = append(errs, fmt.Errorf("peer %q listed twice", p))
		}
		seen[p] = true
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"queue_size", c.QueueSize}, {"queue_bytes", c.QueueBytes}, {"max_frame_bytes", c.MaxFrameBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative: %d", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"backoff_initial", c.BackoffInitial}, {"backoff_max", c.BackoffMax}, {"handshake_timeout", c.HandshakeTimeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative: %s", f.name, f.v))
		}
	}
	if c.BackoffInitial > 0 && c.BackoffMax > 0 && c.BackoffMax < c.BackoffInitial {
		errs = append(errs, fmt.Errorf("backoff_max %s is below backoff_initial %s", c.BackoffMax, c.BackoffInitial))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.BackoffInitial == 0 {
		c.BackoffInitial = DefaultBackoffInitial
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffInitial)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return c
}
