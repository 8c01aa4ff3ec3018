package paxos

// This file holds the vocabulary shared by the core, the driver (package
// replog), the stores and the wire codec. Fields may be added; changing the
// meaning of one is a wire and disk format change.

// ReplicaID names one replica for its whole life. It is non-zero, chosen at
// random when an empty store is first opened, persisted, never reused and never
// derived from an address: a replica whose disk is wiped comes back with a new
// ReplicaID and is a new member.
type ReplicaID uint64

// ClusterID names one replicated log. It is fixed when the log is initialised;
// zero means "not yet initialised".
type ClusterID uint64

// Position is an index in the log. Position 0 is the first slot of a new log.
type Position uint64

// Proposal is a Paxos ballot. Proposals are totally ordered by Round, then by
// Replica, so two coordinators never hold the same proposal. The zero value is
// lower than every proposal a coordinator uses.
type Proposal struct {
	Round   uint64
	Replica ReplicaID
}

// Less reports whether p orders before q.
func (p Proposal) Less(q Proposal) bool {
	if p.Round != q.Round {
		return p.Round < q.Round
	}
	return p.Replica < q.Replica
}

// IsZero reports whether p is the zero proposal.
func (p Proposal) IsZero() bool { return p == Proposal{} }

// Status is the persisted status of a replica, as in the Mesos log.
type Status uint8

// Replica statuses. Only a VOTING replica answers promise and write requests.
const (
	StatusEmpty      Status = iota + 1 // nothing stored yet; must recover before it votes
	StatusStarting                     // first phase of auto-initialisation
	StatusRecovering                   // catching up [begin, end]; does not vote
	StatusVoting                       // caught up; answers promises and writes
)

// EntryType is the kind of value stored at a position.
type EntryType uint8

// Entry types.
const (
	EntryNop      EntryType = iota + 1 // fills a hole; Tombstone marks a truncated position
	EntryAppend                        // application data
	EntryTruncate                      // removes every position below To
	EntrySnapshot                      // application snapshot: the state after every position below it
	EntryConfig                        // a membership change; Config holds the new membership
)

// Entry is the value chosen at a position.
type Entry struct {
	Type      EntryType
	Data      []byte      // EntryAppend and EntrySnapshot payload
	To        Position    // EntryTruncate: positions < To are removed
	Tombstone bool        // EntryNop: the position was truncated
	Config    *Membership // EntryConfig: the membership from this position on
}

// Member is one replica of the log's membership.
type Member struct {
	ID    ReplicaID
	Addr  string // advertised peer address (host:port); informational, never an identity
	Voter bool   // counted in quorums; a non-voter only learns
}

// Membership is the set of replicas of a log. Members are sorted by ID.
type Membership struct {
	Cluster ClusterID
	Members []Member
}

// Action is the state of one position on one replica (the Mesos "Action").
type Action struct {
	Position  Position
	Promised  Proposal // highest proposal promised at this position
	Performed Proposal // proposal of the write that set Entry; zero if none
	Learned   bool     // Entry is known to be chosen
	Entry     Entry    // meaningful only when Performed is non-zero or Learned
}

// HardState is the replica's persisted metadata, saved atomically with the
// actions of the same batch.
type HardState struct {
	Replica    ReplicaID
	Cluster    ClusterID
	Status     Status
	Promised   Proposal   // the implicit promise: every position not otherwise promised
	Membership Membership // the membership in force at the learned position (latest EntryConfig learned in order)
	ConfigAt   Position   // position of that EntryConfig
	Begin      Position   // first position not truncated
	// LearnedTo is the learned watermark: every position in [Begin,
	// LearnedTo) is learned, and the action stored there holds the chosen
	// value whether or not its Learned flag is set. It is saved in the same
	// batch as (or a batch after) the actions it covers, never before them,
	// so a crash can lose it but never make it cover an action that is not
	// durable. Zero (a store written before the field existed) claims
	// nothing: then only the actions' own Learned flags count.
	LearnedTo Position
}

// MessageType is the kind of a Message.
type MessageType uint8

// Message types. Request/response pairs follow the Mesos log; heartbeats,
// catch-up, refusals and the pre-vote are regent's. A replica ignores a type
// it does not know.
const (
	MsgPromiseRequest MessageType = iota + 1
	MsgPromiseResponse
	MsgWriteRequest
	MsgWriteResponse
	MsgLearned
	MsgRecoverRequest
	MsgRecoverResponse
	MsgCatchupRequest
	MsgCatchupResponse
	MsgHeartbeat
	MsgHeartbeatResponse
	MsgRefused
	MsgPreVoteRequest
	MsgPreVoteResponse
)

// Result is a replica's answer to a promise, write or heartbeat.
type Result uint8

// Results.
const (
	ResultAccept  Result = iota + 1
	ResultReject         // a higher proposal was promised; Proposal carries it
	ResultIgnored        // the replica is not VOTING
)

// Message is everything replicas send each other. One flat struct (as
// raftpb.Message) keeps the codec and the transport simple; which fields are
// meaningful depends on Type. To == 0 means "every peer the transport knows".
// Every message carries Cluster (the sender's, zero before it knows one) and
// From. Ranges are half-open: [Position, End).
//
//   - PromiseRequest: Proposal; Implicit (every position), or the explicit
//     range [Position, End).
//   - PromiseResponse: Result, Proposal (the request's, or the higher promise
//     on REJECT), Implicit echoed, Status, Reason (a lease refusal). Implicit
//     ACCEPT: Begin, End (one past the highest stored position), Config and
//     Position (the sender's membership and the position of its
//     EntryConfig). Explicit ACCEPT: Position (echoed), End (the answer
//     covers [Position, End)), Begin, Actions (written or learned actions in
//     the range).
//   - WriteRequest: Proposal, Actions (a contiguous run), Begin (the
//     coordinator's tick at sending, echoed for its lease).
//   - WriteResponse: Result, Proposal, [Position, End) acknowledged, Begin
//     echoed, Status.
//   - Learned: Actions, all learned.
//   - RecoverRequest: Proposal (Round = recover round, Replica = sender),
//     Status, Config (the sender's own Member with its address).
//   - RecoverResponse: Proposal echoed, Status, Begin and End when VOTING,
//     Config and Position (membership and its position; before it knows one,
//     the sender's own Member).
//   - CatchupRequest: [Position, End) wanted.
//   - CatchupResponse: Result, Actions (learned, contiguous, starting at
//     Position or, if that is truncated, at Begin), Begin, End (the sender's
//     learned position), Config and Position.
//   - Heartbeat: Proposal, Position (the coordinator's learned position), End
//     (its next position), Begin (its tick at sending).
//   - HeartbeatResponse: Result, Proposal, Begin echoed, Position (the
//     sender's learned position), End (one past its highest stored position),
//     Status.
//   - Refused: Reason.
//   - PreVoteRequest: Proposal (the one the candidate would campaign with),
//     Begin (the candidate's tick at sending, naming the round).
//   - PreVoteResponse: Result (ACCEPT: the sender would promise Proposal;
//     REJECT: it would not, Proposal carries the higher promise or lease and
//     Reason a lease refusal; IGNORED: not VOTING, or its start-up lease),
//     Proposal (the request's unless REJECT), Begin echoed, Status, and when
//     a live lease made it refuse, Position: the ticks until that lease
//     lapses. Neither changes any state of the sender or the receiver but
//     the campaign.
type Message struct {
	Type     MessageType
	Cluster  ClusterID
	From     ReplicaID
	To       ReplicaID
	Proposal Proposal
	Implicit bool     // PromiseRequest: the implicit promise for all positions
	Position Position // the position a request or response is about
	Begin    Position
	End      Position
	Result   Result
	Status   Status
	Actions  []Action    // write batches, learned batches, catch-up batches, a previous action
	Config   *Membership // RecoverResponse and Refused: the sender's membership
	Reason   string      // Refused: why, in words an operator can act on
}
