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
// A crash anywhere in between leaves a state the protocol allows. Storage
// errors are fatal: the node stops and reports them; network sends are fire
// and forget (Paxos tolerates loss).
//
// This package must not import net, net/http, the master, the supervisor, HCL
// or Badger; stores and transports are plugged in through interfaces.
package replog
