package master

import (
	"context"
	"time"
)

// Log is the replicated log as the master needs it. The appliance adapts
// the replog node to it; tests use a fake that learns every append at once.
// All methods are safe for concurrent use.
type Log interface {
	// Elect runs an election round to make this node the log's coordinator
	// (the only writer). It blocks until the round ends and returns the
	// last position of the log once every position up to it is learned
	// locally. It returns ErrNotElected when the round failed (a live lease
	// elsewhere, a higher proposal, no quorum); ErrCorrupt and ErrClosed are
	// permanent.
	Elect(ctx context.Context) (last uint64, err error)

	// Append proposes data at the next position and blocks until it is
	// learned by a quorum, returning its position. Several Appends may be
	// in flight at once; their order in the log is the order in which the
	// calls were made only if they were made from one goroutine one after
	// another. data is owned by the log after the call. Errors:
	// ErrLostLeadership (another coordinator exists), ErrNotLeader,
	// ErrClosed, ErrCorrupt, or ctx's error.
	Append(ctx context.Context, data []byte) (pos uint64, err error)

	// AppendSnapshot is Append for an application snapshot: data is the
	// state after every position below the returned one. Read returns it
	// with Kind EntrySnapshot.
	AppendSnapshot(ctx context.Context, data []byte) (pos uint64, err error)

	// Truncate removes every position below to, through the log (it is a
	// write and fails like Append). The entry at to should be a snapshot.
	Truncate(ctx context.Context, to uint64) error

	// Read returns learned entries at positions >= from, in position order,
	// at least one, blocking until one is learned or ctx is done (then it
	// returns ctx's error). Positions that carry no application data (no-op,
	// truncate, membership) are skipped. If positions >= from were
	// truncated, the first entry returned is the snapshot that replaced
	// them. The returned slices must not be modified. Errors: ErrClosed,
	// ErrCorrupt, ctx's error.
	Read(ctx context.Context, from uint64) ([]Entry, error)

	// Status reports the log's state as this node knows it, without
	// blocking.
	Status() LogStatus
}

// EntryKind is the kind of a learned [Entry].
type EntryKind int

// Entry kinds.
const (
	EntryAppend   EntryKind = iota + 1 // written by Append
	EntrySnapshot                      // written by AppendSnapshot
)

// String returns the kind's name.
func (k EntryKind) String() string {
	switch k {
	case EntryAppend:
		return "APPEND"
	case EntrySnapshot:
		return "SNAPSHOT"
	}
	return "UNKNOWN"
}

// Entry is one learned log entry with application data.
type Entry struct {
	Position uint64
	Kind     EntryKind
	Data     []byte
}

// LogStatus is the log's state as seen by this node.
type LogStatus struct {
	// Coordinator is true while this node holds the right to write.
	Coordinator bool
	// Lease is how much longer the live coordinator's lease lasts as this
	// node knows it: its own lease when Coordinator, else the lease of the
	// coordinator it last heard from. Zero or negative means no live lease
	// is known (followers may campaign).
	Lease time.Duration
	// Replica is the local replica's status: "EMPTY", "STARTING",
	// "RECOVERING" or "VOTING".
	Replica string
	// Begin is the first position not truncated; End the last learned.
	Begin, End uint64
	// Members is the number of voters (the ensemble size), Reachable how
	// many of them this node can reach (counting itself), Quorum how many
	// make a quorum.
	Members, Reachable, Quorum int
	// Catchup is the local replica's catch-up, the zero value (but for
	// LearnedTotal) when none is in progress.
	Catchup LogCatchup
}

// LogCatchup is the progress of a catch-up: an EMPTY, RECOVERING or lagging
// replica fetching learned entries from a VOTING replica.
type LogCatchup struct {
	// Active is true while the catch-up is in progress.
	Active bool
	// From is the local learned position when the catch-up began, Target
	// the position it catches up to, LearnedTo the local learned position
	// now (each one past the last position learned).
	From, Target, LearnedTo uint64
	// Rate is the positions learned per second over the last few seconds,
	// ETA the time left at that rate (zero while unknown).
	Rate float64
	ETA  time.Duration
	// LearnedTotal counts the positions learned while catching up since
	// the log was opened: a counter.
	LearnedTotal uint64
}

// Done returns the positions learned since the catch-up began.
func (c LogCatchup) Done() uint64 {
	if to := min(c.LearnedTo, c.Target); to > c.From {
		return to - c.From
	}
	return 0
}

// Total returns the positions the catch-up covers.
func (c LogCatchup) Total() uint64 {
	if c.Target < c.From {
		return 0
	}
	return c.Target - c.From
}

// Voting reports whether the local replica takes part in quorums.
func (s LogStatus) Voting() bool { return s.Replica == "VOTING" }
