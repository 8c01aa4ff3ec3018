// Package replog is regent's replicated log node: it drives the deterministic
// Paxos core (package replog/paxos), persists through a [Storage], sends
// through a [Transport], publishes learned entries to readers, and turns a
// ticker into logical time. It also declares the wire and disk codec of the
// core's types and the errors callers branch on.
//
// # Vocabulary
//
// The same words are used in code, logs, metrics and docs, after the Mesos
// replicated log:
//
//   - Position: an index in the log; each position holds at most one chosen
//     entry.
//   - Proposal: a Paxos ballot (round, replica); unique per replica, totally
//     ordered.
//   - Promise: a replica's pledge not to accept a lower proposal, either for
//     one position or, implicitly, for every position not otherwise promised.
//   - Write: a coordinator's request that replicas accept an entry at a
//     position under its proposal.
//   - Learned: a position whose entry is known to be chosen by a quorum;
//     learned entries never change.
//   - Replica: the acceptor and learner on each master, with a persisted
//     status (EMPTY, STARTING, RECOVERING, VOTING) and a ReplicaID that is
//     never reused.
//   - Coordinator: the single proposer, on the leading master; it wins the
//     implicit promise round once, fills holes, then writes without a promise
//     phase.
//   - Recover: how an EMPTY or restarted replica finds the log's extent and
//     catches up before it votes.
//   - Catchup: streaming learned actions (in batches, or from a snapshot) to a
//     replica that lacks them.
//   - Truncate: removing every position below a point, by a learned truncate
//     entry.
//
// # The driver's duties
//
// For every [paxos.Ready] the core produces, the node's single driver
// goroutine, in this order:
//
//  1. sends the coordinator's write requests (Early: the coordinator counts
//     its own accept only once it is saved, so they need not wait);
//  2. persists its hard state, actions and truncation as one [Batch] with one
//     [Storage.Save], synced when the Ready says MustSync (it holds a vote
//     or a status or membership change; learned marks and truncations alone
//     are saved without a sync);
//  3. sends its other messages with [Transport.Send], only after the batch is
//     saved (and durable, if synced);
//  4. publishes its learned entries to readers, in position order;
//  5. calls Advance on the core.
//
// One exception to the order: a Ready of learned marks alone (not MustSync,
// no hard state, no truncation: the coordinator's after a quorum answered,
// a follower's from a learned broadcast) has its messages sent and its
// entries published before its save. Such a batch holds no vote, so its
// messages and entries rest only on votes already synced, and a crash could
// lose its unsynced save anyway; the appender is answered a store commit
// sooner. Until that save is done the node keeps those entries in memory,
// so that no reader looks for them in storage before they are marked
// learned there. Appends waiting by then (often from the appenders just
// answered) are proposed at once, their write requests sent, and their
// batch saved together with the learned marks in one Save, synced: no
// message is stepped in between, so the core has read nothing the unsaved
// marks change.
//
// # A slow save does not stop the lease
//
// Saves run on a goroutine of their own (the saver), one at a time and in
// order, while the driver waits for each. A save usually takes well under a
// tick, but a synced one on a busy disk has been seen to take 443 ms, longer
// than a master's 250 ms lease: with the driver blocked in it, no heartbeat
// left the leader and no answer left a follower, the followers' leases
// lapsed and they elected another leader although this one was only slow.
// So while a save is in flight the driver does a narrow part of its work and
// nothing else (no proposal taken, no campaign, no membership change, no
// other message stepped: those wait until no save is in flight):
//
//   - it keeps logical time going (ticks), so the coordinator sends its
//     heartbeats and a lapsed lease is still noticed;
//   - it steps heartbeats and their answers, so a quorum's acknowledgements
//     renew the coordinator's lease and a follower renews the leader's;
//   - of the Ready the core then has, it sends at once only what relies on
//     nothing unsaved: the coordinator's write requests (Early: its own
//     accepts count only once saved, and its proposal's promise was synced
//     before it was elected), its heartbeats, refusals, answers that refuse
//     or ignore a heartbeat, and answers that accept one only when the
//     promise of that proposal and the VOTING status they report are
//     already durable (the last synced hard state). The rest of that Ready
//     (a raised promise, NOPs written over leftovers) is saved after the
//     save in flight, and its other messages leave after that save, as
//     always: persist and sync before sending what depends on it.
//
// The same rule applies outside a stall: an answer to a heartbeat that is
// free leaves before its Ready's save, so a follower's fsync is not added to
// the age of the leader's lease. The coordinator's heartbeats themselves
// leave before their save only while a save is in flight. A heartbeat
// reports the coordinator's learned position only as far as the learned
// broadcasts already sent (those of the last Ready advanced): one that
// overtook the broadcasts it announces would start needless catch-ups on
// the followers.
//
// This is narrower than moving every storage write off the driver (etcd's
// asynchronous storage writes): votes, promises and the campaign still wait
// for their sync exactly as before, so the rules the core's safety rests on
// are unchanged; only the lease's traffic no longer queues behind the disk.
// A save's error still stops the node.
//
// Every incoming message is stepped at the tick it arrived in (or the
// current one, if later), and on each tick the driver takes the messages
// waiting in its inbox before it counts the ticks that came due. A replica
// whose driver was itself stalled (a long pause, a starved CPU) therefore
// finds the heartbeats that arrived meanwhile before it judges the leader's
// lease lapsed, and does not report the leader gone while it was live. This
// is safe because a replica's lease then runs from when it received the
// heartbeat, which is no earlier than when the coordinator sent it, and the
// coordinator counts its own lease from the send.
//
// A crash anywhere in between leaves a state the protocol allows. Storage
// errors are fatal: the node stops and reports them; network sends are fire
// and forget (Paxos tolerates loss).
//
// This package must not import net, net/http, the master, the supervisor, HCL
// or Badger; stores and transports are plugged in through interfaces.
package replog
