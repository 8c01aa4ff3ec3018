// Package peer carries the replicated log's messages between replicas over
// gRPC. It is the only replog package that opens sockets, and it must not
// import master, supervisor, badger or hcl.
//
// A [Transport] dials every configured peer address and keeps one outgoing
// connection with one bidirectional stream to each, reconnecting with
// exponential back-off and jitter. The stream opens with a handshake (protocol
// version, ClusterID, ReplicaID, advertised address, nonces, and an
// HMAC-SHA256 proof under the shared peer secret when one is configured);
// either end refuses a peer of another cluster, a replica the membership check
// rejects, a wrong secret or its own ReplicaID, and a refused dialer is told
// why. After the handshake the dialer sends frames, each a batch of messages
// encoded by [replog.EncodeMessage]: messages for a peer wait in a bounded
// queue, and the peer's sender drains the whole queue into one frame as soon
// as the stream is free, so a burst costs one write and a lone message is
// never held back. A full queue drops and counts.
//
// Messages arrive on the streams other replicas opened to this one, and are
// handed to [Config.Handler], one call per message, from the goroutine of the
// stream they came on (so calls from different peers are concurrent).
//
// Concurrency: [Transport.Send] and [Transport.Peers] are safe for concurrent
// use; [Transport.Close] stops and waits for every goroutine the transport
// started (listed on [Transport]). [Faults] wraps any replog.Transport to
// drop, delay, duplicate and partition messages in tests.
package peer
