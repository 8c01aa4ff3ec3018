package paxos

// Ready is one batch of work for the driver. The driver sends Early (it may
// also send them while it persists), persists HardState, Actions and
// TruncateBelow atomically, syncs them if MustSync, only then sends
// Messages, then publishes Learned, then calls [Core.Advance] with the
// batch.
//
// The slices belong to the driver once returned; the core does not modify
// them again, but the Entry payloads and Membership pointers inside may be
// shared with the core and must be treated as read-only.
type Ready struct {
	// HardState is the replica's metadata to persist, or nil if unchanged.
	HardState *HardState
	// LearnedToOnly reports that HardState differs from the one saved
	// before only in LearnedTo, the learned watermark: like a learned mark,
	// it needs no sync and a crash may lose it.
	LearnedToOnly bool
	// Actions are upserts, ascending by position.
	Actions []Action
	// TruncateBelow, if non-zero, asks the driver to delete every stored
	// action below it (after applying Actions).
	TruncateBelow Position
	// MustSync reports that the batch must be durable before any of its
	// Messages is sent or its Learned published: it holds a vote (an
	// implicit or explicit promise, an accept, counted by this replica or by
	// a coordinator) or a HardState change other than Begin (status,
	// cluster, membership, identity). When false the batch holds only
	// learned marks of values whose votes earlier synced batches made
	// durable, or of values chosen elsewhere, and truncations: the driver
	// may save it without syncing. The storage must keep saves in order: a
	// synced save makes every earlier one durable too. The package doc
	// explains why this is safe.
	MustSync bool
	// Messages are sent only after the batch is persisted (and synced, if
	// MustSync). To == 0 means every peer the transport knows.
	Messages []Message
	// Early are messages the driver may send before it persists the batch,
	// or while it does: the coordinator's write requests. They rely on
	// nothing the batch holds, because the coordinator counts its own
	// accept of a write only once Advance reports saved the batch holding
	// it (the leader's parallel append of Raft, §10.2.1 of Ongaro's
	// thesis). Sending them first overlaps the coordinator's sync with the
	// followers'.
	Early []Message
	// Learned are the newly learned actions for the application, ascending
	// and contiguous from the last delivered position. After a truncation
	// this replica had not caught up with, the sequence jumps forward to
	// Begin, which by the log's convention holds an EntrySnapshot.
	Learned []Action
	// Events report protocol transitions, in the order they happened.
	Events []Event

	seq uint64
	// learnedTo is the core's learned position when the Ready was taken:
	// its learned broadcasts cover every position below it.
	learnedTo Position
}

// Event is a protocol transition reported in [Ready.Events]: one of
// [Elected], [LostLeadership], [CampaignFailed], [Joined], [StatusChanged],
// [Refused], [NotInitialized], [MembershipChanged].
type Event interface {
	isEvent()
}

// Elected reports that this replica won the implicit promise round and filled
// every position up to the highest end a quorum reported: it may now Propose.
type Elected struct {
	Proposal Proposal
	Last     Position // last filled position; the first Propose gets Last+1
}

// LostLeadership reports that the coordinator saw a REJECT: a replica
// promised the higher proposal By. Writes in flight have an unknown outcome
// and will be filled by the next coordinator. The coordinator stops writing.
type LostLeadership struct {
	By Proposal
}

// CampaignFailed reports that a campaign ended without winning: a replica
// promised the higher proposal By, or refused because it knows a live lease
// held by another coordinator.
type CampaignFailed struct {
	By     Proposal
	Reason string
}

// Joined reports that the local replica became VOTING: recovery (or
// initialisation) is complete.
type Joined struct {
	Begin, End Position
}

// StatusChanged reports a persisted status transition of the local replica.
type StatusChanged struct {
	From, To Status
}

// Refused reports that a peer refused a message of ours: we are not a member
// of its cluster, or belong to another cluster.
type Refused struct {
	From   ReplicaID
	Reason string
}

// NotInitialized reports that every expected replica is EMPTY but
// auto-initialisation is off: an operator must initialise the log.
type NotInitialized struct {
	Empty int // EMPTY replicas seen in the last recover round
}

// MembershipChanged reports that an EntryConfig was learned.
type MembershipChanged struct {
	At         Position
	Membership Membership
}

func (Elected) isEvent()           {}
func (LostLeadership) isEvent()    {}
func (CampaignFailed) isEvent()    {}
func (Joined) isEvent()            {}
func (StatusChanged) isEvent()     {}
func (Refused) isEvent()           {}
func (NotInitialized) isEvent()    {}
func (MembershipChanged) isEvent() {}
