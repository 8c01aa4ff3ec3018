package replog

import "github.com/regent-ha/regent/replog/paxos"

// Transport carries messages between replicas. The implementation is package
// replog/peer (gRPC streams); package replogtest has an in-memory one.
//
// Incoming messages are handed to the func(paxos.Message) given to the
// transport at construction, normally [Node.Step]; that callback must not
// block for long, and the node keeps a bounded inbox.
type Transport interface {
	// Send queues msgs for delivery and returns at once; a full queue drops
	// (counted by the transport). A message with To == 0 goes to every
	// connected peer. Send is safe for concurrent use. The transport must not
	// retain msgs or the slices inside it after Send returns unless it copies
	// them (it may encode them immediately).
	Send(msgs []paxos.Message)

	// Peers reports the peers the transport knows, with the ReplicaID each
	// announced in its handshake (0 if not yet known). Safe for concurrent
	// use; the returned slice belongs to the caller.
	Peers() []Peer

	// Close stops the transport. Idempotent.
	Close() error
}

// Peer is one remote replica as a [Transport] knows it.
type Peer struct {
	ID        paxos.ReplicaID // learnt in the handshake; 0 if not yet
	Addr      string          // peer address (host:port) from the configuration
	Connected bool            // a stream is up
	// Refusal is the last handshake refusal since the stream was last up,
	// in words an operator can act on ("refused by peer: …" when the peer
	// refused this replica); empty if none.
	Refusal string
}
