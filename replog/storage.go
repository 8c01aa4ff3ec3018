package replog

import "github.com/regent-ha/regent/replog/paxos"

// Storage is the durable storage of one replica: its [paxos.HardState] and one
// [paxos.Action] per stored position. Implementations: package badgerstore
// (Badger v4, the real one) and package replogtest (memory, crashable).
//
// All methods are called from the node's driver goroutine, except that an
// implementation must tolerate calls of the read-only methods concurrent with
// everything else (catch-up serving). Every error is fatal to the node:
// storage is never retried. Errors caused by undecodable data wrap
// [ErrCorrupt]; every method of a closed store returns an error wrapping
// [ErrClosed].
//
// The embedded [paxos.Storage] methods:
//   - InitialState returns the saved hard state, or the zero HardState
//     (Replica == 0) for an empty store.
//   - Action returns the action stored at a position, if any.
//   - Actions returns the stored actions in [from, to), ascending: the first
//     one if any exists, then each following one while the total encoded size
//     ([ActionSize]) stays within maxBytes; maxBytes <= 0 means no limit.
//     The returned slices (including Entry.Data) belong to the caller.
//   - LastPosition returns the highest stored position, if any.
type Storage interface {
	paxos.Storage

	// Save applies b atomically: the hard state (if non-nil), the actions
	// (upsert by position), then deletes every action below b.TruncateBelow
	// (if non-zero). When b.Sync is true, Save returns only after the whole
	// batch is durable. Saves become durable in order: a synced Save makes
	// every earlier Save durable too, and a crash keeps the synced saves
	// plus at most a prefix of the later ones, never a later one without
	// an earlier one (the core's MustSync relies on it). Save does not
	// retain b or its slices.
	Save(b Batch) error

	// Close releases the store. It is idempotent; later calls of any other
	// method return [ErrClosed].
	Close() error
}

// Batch is one atomic write to a [Storage]: the durable part of a
// [paxos.Ready].
type Batch struct {
	HardState     *paxos.HardState // nil: unchanged
	Actions       []paxos.Action   // upserts by position
	TruncateBelow paxos.Position   // delete actions below it; 0: none
	Sync          bool             // durable before Save returns
}

// IsEmpty reports whether b writes nothing.
func (b Batch) IsEmpty() bool {
	return b.HardState == nil && len(b.Actions) == 0 && b.TruncateBelow == 0
}
