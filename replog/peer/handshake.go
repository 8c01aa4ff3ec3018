package peer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"google.golang.org/grpc/codes"

	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer/peerpb"
)

// ProtocolVersion is the version of the peer protocol this package speaks,
// sent in every Hello.
const ProtocolVersion = 1

// nonceBytes is the length of a handshake nonce.
const nonceBytes = 16

// maxAddrBytes bounds the advertised address in a Hello, which ends up in
// logs and metric labels.
const maxAddrBytes = 1024

// MAC labels keep a MAC made for one step from being replayed as another.
const (
	labelHello   = "regent/peer/v1 hello"
	labelWelcome = "regent/peer/v1 welcome"
	labelProof   = "regent/peer/v1 proof"
)

// The handshake, with k the shared secret and nc, ns fresh nonces:
//
//	dialer   → listener  Hello{ids, nc, HMAC(k, hello ‖ ids ‖ nc)}
//	listener → dialer    Welcome{ids, ns, HMAC(k, welcome ‖ ids ‖ ns ‖ nc)}
//	                     or a gRPC status with the refusal reason
//	dialer   → listener  Frame{proof: HMAC(k, proof ‖ nc ‖ ns)}
//
// where ids is version, cluster, replica and address, each length-prefixed or
// fixed width. The hello MAC lets the listener refuse a wrong secret at once;
// the welcome MAC, bound to nc, proves a live listener to the dialer; the
// proof, bound to ns, proves a live dialer, so a recorded hello cannot be
// replayed into an accepted stream. Without a secret (mutual TLS) the MACs
// are empty. Nothing here protects frames after the handshake: without TLS,
// peer traffic can be read and altered by anyone on the path.

// refusal is a handshake check that failed: the code and the reason sent to
// the peer.
type refusal struct {
	code   codes.Code
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(format string, args ...any) *refusal {
	return &refusal{code: codes.PermissionDenied, reason: fmt.Sprintf(format, args...)}
}

// newNonce returns nonceBytes random bytes.
func newNonce() []byte {
	b := make([]byte, nonceBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// helloMAC computes the MAC of h's identity fields and nonce under label,
// followed by extra (the other end's nonce, in a welcome). It returns nil
// without a secret.
func helloMAC(secret []byte, label string, h *peerpb.Hello, extra []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	var buf [20]byte
	binary.BigEndian.PutUint32(buf[0:4], h.GetVersion())
	binary.BigEndian.PutUint64(buf[4:12], h.GetCluster())
	binary.BigEndian.PutUint64(buf[12:20], h.GetReplica())
	m.Write(buf[:])
	writeField(m, []byte(h.GetAddr()))
	writeField(m, h.GetNonce())
	if extra != nil {
		writeField(m, extra)
	}
	return m.Sum(nil)
}

// proofMAC computes the dialer's proof over both nonces; nil without a
// secret.
func proofMAC(secret, dialerNonce, listenerNonce []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(labelProof))
	writeField(m, dialerNonce)
	writeField(m, listenerNonce)
	return m.Sum(nil)
}

// writeField writes b with a 4-byte length prefix, so that field boundaries
// are part of the MAC.
func writeField(m hash.Hash, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	m.Write(n[:])
	m.Write(b)
}

// hello builds this replica's Hello with a fresh nonce; peerNonce is the
// dialer's nonce when building a welcome, nil otherwise.
func (t *Transport) hello(label string, peerNonce []byte) *peerpb.Hello {
	cluster, id := t.cfg.Self()
	h := &peerpb.Hello{
		Version: ProtocolVersion,
		Cluster: uint64(cluster),
		Replica: uint64(id),
		Addr:    t.cfg.AdvertiseAddr,
		Nonce:   newNonce(),
	}
	h.Mac = helloMAC(t.cfg.Secret, label, h, peerNonce)
	return h
}

// check runs the transport's checks and then Config.Allow on the Hello of a
// peer: h came with a MAC under label, over peerNonce too if non-nil. It
// returns nil to accept.
func (t *Transport) check(h *peerpb.Hello, label string, peerNonce []byte) *refusal {
	if h == nil {
		return &refusal{code: codes.InvalidArgument, reason: "handshake: no hello"}
	}
	if h.GetVersion() != ProtocolVersion {
		return &refusal{
			code:   codes.FailedPrecondition,
			reason: fmt.Sprintf("peer protocol version %d is not supported (this replica speaks %d)", h.GetVersion(), ProtocolVersion),
		}
	}
	if len(h.GetAddr()) > maxAddrBytes {
		return refuse("handshake address has %d bytes, more than %d", len(h.GetAddr()), maxAddrBytes)
	}
	if len(h.GetNonce()) != nonceBytes {
		return refuse("handshake nonce has %d bytes, want %d", len(h.GetNonce()), nonceBytes)
	}
	switch {
	case len(t.cfg.Secret) > 0 && len(h.GetMac()) == 0:
		return refuse("peer_secret is set on one replica only: the handshake from %s is not authenticated", h.GetAddr())
	case len(t.cfg.Secret) == 0 && len(h.GetMac()) > 0:
		return refuse("peer_secret is set on one replica only: %s authenticates its handshake but this replica has no secret", h.GetAddr())
	case len(t.cfg.Secret) > 0 && !hmac.Equal(h.GetMac(), helloMAC(t.cfg.Secret, label, h, peerNonce)):
		return refuse("peer_secret does not match: the handshake from %s fails authentication", h.GetAddr())
	}
	id := paxos.ReplicaID(h.GetReplica())
	if id == 0 {
		return refuse("handshake from %s carries replica id 0", h.GetAddr())
	}
	cluster, self := t.cfg.Self()
	if id == self {
		return refuse("replica %d at %s has this replica's own id: a replica dialed itself, or a data directory was copied", id, h.GetAddr())
	}
	peerCluster := paxos.ClusterID(h.GetCluster())
	if cluster != 0 && peerCluster != 0 && cluster != peerCluster {
		return refuse("replica %d at %s belongs to cluster %d, this replica to cluster %d", id, h.GetAddr(), peerCluster, cluster)
	}
	if t.cfg.Allow != nil {
		if err := t.cfg.Allow(peerCluster, id, h.GetAddr()); err != nil {
			return refuse("replica %d at %s is refused: %v", id, h.GetAddr(), err)
		}
	}
	return nil
}
