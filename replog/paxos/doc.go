// Package paxos is the deterministic core of regent's replicated log: the
// replica (acceptor and learner), the coordinator (proposer), recovery,
// catch-up and membership, as one state machine ([Core]). Messages and ticks
// go in; a [Ready] batch comes out. The protocol is the Mesos replicated log
// (Multi-Paxos with implicit promises) made safer and faster; see
// docs/contracts.md for the seams and ../shared/reference/mesos.md (a) for the
// original.
//
// # Dependencies and concurrency
//
// The package imports only the standard library, and from it not time, os,
// log, sync or net: no goroutines, clocks, IO or global randomness (jitter
// comes from the injected Config.Rand), and no decision depends on map
// iteration order. A Core is not safe for concurrent use: the driver calls it
// from one goroutine. The core never logs; the driver logs what it sees in
// Ready.
//
// # The driver's duties, in order
//
//  1. Feed the core: [Core.Step] for every incoming message, [Core.Tick] for
//     every unit of logical time, and the application's calls
//     ([Core.Campaign], [Core.Propose], [Core.ChangeMembership],
//     [Core.Demote]). An error from Step, Campaign, Propose or
//     ChangeMembership other than this package's sentinels is a storage
//     error, and fatal.
//  2. While [Core.HasReady], take [Core.Ready], send Ready.Early (the
//     coordinator's write requests; they may also leave while the batch is
//     being saved), and persist its HardState, Actions and TruncateBelow as
//     one atomic batch, synced if Ready.MustSync. Saves must stay in order:
//     a synced save makes every earlier save durable too (a write-ahead log
//     does this).
//  3. Only then send Ready.Messages (To == 0 means every peer).
//  4. Publish Ready.Learned to the application, in order. (A batch that is
//     not MustSync and holds neither HardState nor TruncateBelow holds no
//     vote: a driver may do 3 and 4 before its save, which a crash could
//     lose anyway; see "Which batches must be synced", (2).)
//  5. Call [Core.Advance] with the batch.
//
// A crash anywhere in this sequence leaves a state the protocol allows: a
// message never leaves before the promise or acceptance it reports is
// durable. Messages to self are handled inside the core, and the local vote
// is persisted in the same batch as the messages that go out — except the
// coordinator's accept of its own write, which it counts only once
// [Core.Advance] reports saved the batch holding it, so that its write
// requests can go out first (Ready.Early) and its own sync runs while the
// followers sync theirs (Raft's leader writes to its disk in parallel, §10.2.1
// of Ongaro's thesis). A write request carries no vote of its sender: the
// coordinator's promise was synced when it campaigned, and a follower's
// accept stands on its own. If the coordinator dies before its save, its
// accept was never counted.
//
// # Which batches must be synced
//
// Ready.MustSync is true when the batch holds anything a message of the
// batch, or a later decision, relies on: a raised implicit promise, an
// explicit promise stored at a position, an accepted write, a status,
// cluster, membership or identity change in HardState — and so every local
// vote the core counts toward a quorum, since the local replica's promise or
// accept is stored in the batch that counts it. With a quorum of one the
// coordinator's accept decides alone; the accept makes its batch MustSync,
// and it counts (so the entry is learned and published, which is the
// client's acknowledgement) only after that batch is saved. MustSync is false
// for a batch that only records learned marks (of values whose local accept
// an earlier synced batch holds, learned broadcasts, catch-up, fill answers
// that report a learned value), moves Begin and deletes truncated positions.
// With one writer on three replicas an append waits for one sync, not
// three: the coordinator's write requests leave first, its accept and a
// follower's are synced side by side, and the learned mark that follows is
// saved without a sync.
//
// Why it is safe. (1) A learned mark is derived knowledge: a position is
// learned only once a quorum of the membership in force there has durably
// accepted the value (every accept and promise is MustSync, and saves stay
// in order, so an answer never leaves before the vote it reports is on
// disk, and the coordinator counts its own vote only after the batch
// holding it is synced). The value is then chosen
// whatever happens to any one replica's learned mark. (2) Losing unsynced
// learned marks and truncations in a crash restores an earlier state of the
// same replica — with in-order saves, the state after some batch at least
// as new as the last synced one — and every message the replica sent from
// the lost batches reported only chosen values (learned broadcasts,
// catch-up and fill answers) or facts true in the restored state (a write
// to a learned position is acknowledged only because the value written is
// the one chosen there; the promises in any answer are synced). (3) A
// replica that forgets a learned mark re-learns it: the accept under it is
// still on disk, so the next coordinator's fill, which meets every quorum
// that chose a value, writes the same value again; learned broadcasts are
// retransmitted with heartbeats reporting a higher learned position, which
// start catch-up. (4) Whatever depends on learned marks and must outlive a
// crash is itself MustSync and, by the in-order rule, makes every learned
// mark before it durable: VOTING after recovery (it promises that the
// replica has learned everything a quorum reported, so that it may vote),
// a learned membership in HardState, the identity and status. A truncation
// (Begin in HardState) is the exception: losing it only brings back
// learned positions. The seeded simulator checks this: a crash keeps the
// synced batches and a random prefix of the unsynced ones, and the first
// time a value is learned anywhere a quorum must hold its accept durably.
//
// The learned watermark. Most learned marks are not written as actions at
// all: HardState.LearnedTo says that every position below it is learned and
// that the action stored there holds the chosen value. When the core learns
// the next position in order and the action it stores there (saved, or in a
// batch not yet saved) already holds the chosen value — it accepted that
// value, at any proposal — it writes nothing for it; the hard state of the
// next batch carries the new watermark (a few bytes instead of the whole
// entry again). A stored value that differs, a missing one, and a position
// learned out of order (above the watermark) are written whole with their
// learned mark, as before. Safety: (5) the watermark is saved in the batch
// that reaches it or a later one, after the actions of that batch (the
// stores keep saves in order and write a batch's hard state after its
// actions), so a durable watermark never covers an action that is not
// durable; a stored value that was chosen stays the chosen value, since a
// learned position is never overwritten and any later accept there is of
// the chosen value. Losing the watermark in a crash is losing learned marks,
// (2) and (3) above. Every reader of stored actions treats a position below
// the watermark as learned: the core's scan at start, its catch-up answers
// and explicit promises, and the driver's reads of learned entries. A hard
// state written before the field existed decodes with LearnedTo zero, so
// only the actions' own marks count. The simulator checks, at every save
// and every restart, that each stored action below the watermark holds the
// value chosen there.
//
// # Replica rules
//
// A replica that is not VOTING answers promise and write requests IGNORED.
// An implicit promise (every position) is given to a proposal at least as
// high as the current one; equal proposals are accepted again, because
// proposals are unique per replica ((Round, Replica)) so an equal one is a
// retransmission. An explicit promise covers a range of positions and
// returns the actions stored there; learned positions need no promise. A
// write at p with proposal n is refused unless n >= max(action.Promised,
// HardState.Promised) — the implicit promise covers existing positions too,
// which Mesos did not check — and an accepted write raises the position's
// promise to n. The promise is checked before anything else, also at learned
// and truncated positions, so a deposed coordinator is always refused. A
// learned action is never overwritten; two different values learned at one
// position are a broken invariant and panic.
//
// # Coordinator
//
// Campaign picks a proposal above any seen, runs the pre-vote (below) and
// then the implicit promise round. A quorum of VOTING voters of the latest membership wins; IGNORED
// answers are counted apart and the round is retried; any REJECT ends the
// campaign (CampaignFailed) or, once elected, the leadership
// (LostLeadership): the coordinator stops writing at once. The winner fills
// every position below the highest end a quorum reported that its replica has
// not learned, with explicit promises (batched over a range) and then the
// value of the highest proposal written there, or a NOP (position 0 of a new
// log gets the first membership). Then it is Elected and writes without a
// promise phase: up to Config.Window positions in flight, contiguous runs
// batched into one MsgWriteRequest (answers acknowledge a range), learned
// broadcasts batched, unacknowledged positions retransmitted every
// RetryTicks.
//
// # Pre-vote
//
// A campaign starts with a pre-vote (Raft's PreVote, §9.6 of Ongaro's
// thesis). MsgPreVoteRequest carries the proposal the candidate would use;
// every VOTING member, the candidate's own replica included, answers whether
// it would promise it now, by the very rule of the implicit promise:
// IGNORED while not VOTING or under its start-up lease, REJECT while it holds
// a live lease from another coordinator (with the reason) or has promised a
// higher proposal, ACCEPT otherwise. Answering changes nothing (no promise,
// no lease, nothing persisted), so the answer leaves without a sync. A
// quorum of the latest membership answering ACCEPT to the same round (the
// request's tick, echoed in Begin) starts the implicit promise round at
// once: an election takes one round trip more and not one tick more. A
// REJECT that reports a higher promise ends the campaign, as the promise
// round would have; lease refusals end it once no quorum is left to say yes,
// and otherwise a new round is asked one tick after the refuser's lease
// lapses (the refusal reports the ticks left) or after RetryTicks, whichever
// comes first. Just before the promise round the candidate checks its
// own replica again, which may have promised another candidate meanwhile.
//
// Why. Without it, a candidate that cannot win promised itself durably
// first: a replica cut off for longer than a lease comes back while the
// others hold the live coordinator's lease, is refused, but its own replica
// now refuses the coordinator's next heartbeat, and a REJECT deposes a
// coordinator, so the leader's master exited for nothing (known weakness R1
// in docs/reliability.md). With it, the quorum that holds the lease says no
// before anyone promises anything.
//
// Why it is safe. The pre-vote sends, stores and counts no vote: each
// replica's durable state, promise and lease are the same after it answered
// as before, so every argument of this comment holds unchanged; the
// pre-vote only decides whether a candidate starts the implicit promise
// round, which Paxos lets any replica start at any time. Unlike Raft's, it
// compares no logs: any VOTING replica may coordinate, because its fill
// learns every value a quorum may have chosen. A yes is a forecast, not a
// promise: two candidates granted at the same time still meet in the promise
// round, where leases and proposals decide as before (the simulator, which
// counts coordinators deposed while their lease was live, finds almost none
// left, against dozens without the pre-vote on the same seeds).
//
// # Leases
//
// The coordinator sends a heartbeat every HeartbeatTicks carrying its
// proposal and learned position. A replica that heard from a coordinator (or
// promised a proposer) within LeaseTicks refuses implicit promises, and
// pre-votes, to any other proposer. The coordinator's lease lasts LeaseTicks from the send tick
// of the newest heartbeat or write that a quorum acknowledged
// (CoreStatus.LeaseRemaining). A new coordinator needs a quorum of implicit
// promises, and every such quorum intersects the quorum that acknowledged the
// old coordinator's last renewal; the replica in the intersection received the
// renewal after it was sent and refuses others for LeaseTicks after receiving
// it, so the old lease has expired (by the old coordinator's clock) before
// the new coordinator can be elected. This holds only if the replicas' tick
// rates agree: the assumption is bounded clock drift, at most a fraction ε of
// LeaseTicks over one lease period, and the driver must subtract that margin
// (e.g. one tick plus ε·LeaseTicks) from LeaseRemaining before serving reads
// from its lease alone.
//
// # Recovery and catch-up
//
// A replica that is not VOTING broadcasts recover requests. A quorum of
// VOTING voters of the newest membership reported moves it to RECOVERING with
// the end they reported; it catches up and only then persists VOTING
// (Joined). With Config.AutoInitialize, when Expected replicas are EMPTY or
// STARTING it persists STARTING, and when Expected are STARTING or VOTING it
// persists VOTING with those replicas as the initialisation set (two phases,
// so no replica votes while others are still EMPTY). Without it the replica
// stays EMPTY and reports NotInitialized. Catch-up is streamed: a
// MsgCatchupRequest is answered by a VOTING replica with a batch of learned
// actions (at most MaxBatchBytes); a requester behind the responder's
// truncation point receives the responder's Begin (its snapshot) first and
// jumps there. Catch-up is pipelined: the first answer cut short by
// MaxBatchBytes gives the span (positions per answer), and then up to eight
// requests over disjoint ranges of that span are in flight; answers above
// learnedTo are learned out of order, a range answered short is asked for
// again from where the answer stopped, ranges below the responder's Begin
// are replaced by one request past it (the snapshot jump), and when no
// answer advanced learnedTo for a retry period every range is dropped and
// catch-up starts again from learnedTo, from the coordinator or the next
// recovery peer. Every caught-up batch is saved without a sync (learned
// values chosen by others). VOTING after recovery is safe all the same: it
// is set in the batch in which learnedTo reaches the target, so every
// position it covers was stored in that batch or an earlier one; that batch
// is MustSync and saves are in order, so when VOTING is durable so is every
// learned action below the target. A crash before that sync restores an
// earlier state of the replica, still RECOVERING, which catches up again
// from its durable learnedTo; positions learned ahead of learnedTo and lost
// are simply asked for again. Catch-up never runs Paxos itself, so it can never demote a
// working coordinator: a position nobody has learned is left to the
// coordinator's learned broadcasts, or to the next coordinator's fill, and
// a lagging VOTING replica catches up from the coordinator when a heartbeat
// reports a higher learned position. A coordinator writes NOPs over positions
// a replica stored beyond the coordinator's end (leftovers never chosen), so
// every replica's end is eventually learned.
//
// # Membership
//
// The log's membership (cluster ID, replica IDs and addresses, voters) lives
// in the log as EntryConfig values; position 0 holds the first one, written by
// the first coordinator with the replicas that took part in initialisation
// and the driver's random ClusterID. Every message carries Cluster and From: a
// message from another cluster, or a promise, write or heartbeat answer from
// a replica that is not a member, is refused (not counted; MsgRefused with a
// reason, at most once per peer per LeaseTicks; CoreStatus.Refused counts
// them).
//
// The rule. The membership in force at position p is the latest EntryConfig
// learned at a position below p (the initialisation set before position 0 is
// learned). Every phase at p needs a quorum of the voters of that membership:
// a majority, and at least min(Config.Quorum, voters); before position 0 is
// learned, every replica of the initialisation set. Changes are made one at a
// time, one replica at a time (AddNonVoter, Promote, Remove): the coordinator
// proposes a change only after the previous one is learned, and writes
// nothing above an EntryConfig until that EntryConfig is learned. A newly
// elected coordinator has filled every position up to its end before it may
// change anything. Promote needs the replica to report VOTING with its learned
// position within Window of the coordinator's; at most 2*Quorum-1 voters are
// ever admitted. HardState.Membership is the membership in force at the
// replica's learned position, so a truncated log still knows it, and
// truncations that would cut below it are skipped (the next one takes
// effect).
//
// Why it is safe (sketch). (1) Majorities of two configurations whose voter
// sets differ by one replica intersect. Adding x to n voters V: a majority Q
// of V has at least ⌊n/2⌋+1 members and a majority Q' of V∪{x} at least
// ⌊(n+1)/2⌋ members in V, together n+1 > n, so they share one. Removing x:
// a majority of V keeps at least ⌊n/2⌋ members in V∖{x} and a majority of
// V∖{x} has ⌊(n−1)/2⌋+1, together n > n−1. Non-voter changes leave the
// voter set alone, and larger quorums (the Quorum floor) only help. (2) Per position, this is
// plain Paxos with a known acceptor set: the value of position p is decided
// by quorums of config(p), which every proposer computes from values chosen
// below p. A proposer learns config(p) exactly because it fills positions in
// order and stops after an EntryConfig until that is chosen; no position above
// an unchosen EntryConfig is ever written, so no value above it was accepted
// under a membership other than the one a later proposer will compute. (3)
// Election: the implicit promise quorum is taken in the newest membership
// known to the candidate or reported by a promiser, and the election
// completes only when a quorum of the latest membership (after the fill
// discovered every chosen EntryConfig) promised. Because chosen
// configurations form a chain of single changes, each step's quorum meets
// the quorum that chose the next configuration, so the candidate discovers
// every chosen configuration in turn. (4) The "new coordinator commits before
// changing" rule closes the hole Raft's single-server changes had (a leader
// adding a different change while an uncommitted one from an old leader could
// still be chosen): the fill decides every position up to the end any
// promiser reported, including a leftover EntryConfig, before a new change is
// proposed. (5) A deposed coordinator that keeps learning the new
// memberships must never assemble a quorum of one of them. Accepting a write
// or heartbeat promises the coordinator's proposal, as acceptors of classic
// Paxos do; so each configuration chosen by coordinator n was accepted by a
// quorum of the previous one whose members all promised n, every quorum of
// the new configuration meets that quorum (1), and by induction from the
// implicit promise quorum every quorum of every configuration n created
// contains a replica that refuses proposals below n. Promote also waits for
// the replica's own accepting heartbeat answer.
//
// Limits. Position 0 needs every replica of the initialisation set; if one of
// them loses its disk before position 0 is chosen, nothing was ever written
// and the operator re-initialises every replica. A replica whose disk was
// wiped comes back with a new ReplicaID and joins as a new member
// (AddNonVoter, then Promote once caught up; Remove the old ID).
package paxos
