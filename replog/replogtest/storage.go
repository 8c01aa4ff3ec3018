package replogtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// seq orders every recorded call of every fake in this package, so a test can
// compare a store's saves with a network's sends.
var seq atomic.Uint64

func nextSeq() uint64 { return seq.Add(1) }

// Save is one recorded [Storage.Save] call.
type Save struct {
	Seq   uint64       // global order among every recorded call of this package
	Batch replog.Batch // a deep copy of the batch
	Err   error        // what Save returned
}

// Storage is an in-memory [replog.Storage] that keeps apart what was saved
// and what was synced. [Storage.Crash] returns a new store holding only the
// synced state, as a machine that lost power would; every Save is recorded.
//
// All methods are safe for concurrent use.
type Storage struct {
	mu      sync.Mutex
	closed  bool
	crashed bool
	cur     image          // every saved batch applied
	durable image          // only synced batches (and what they made durable) applied
	pending []replog.Batch // saved but not yet synced, oldest first
	saves   []Save
	saveErr error // returned by the next Save, then cleared
	syncs   int
}

var _ replog.Storage = (*Storage)(nil)

// image is one state of the store.
type image struct {
	hs      paxos.HardState
	actions map[paxos.Position]paxos.Action
}

func newImage() image { return image{actions: make(map[paxos.Position]paxos.Action)} }

func (im *image) clone() image {
	c := image{hs: cloneHardState(im.hs), actions: make(map[paxos.Position]paxos.Action, len(im.actions))}
	for p, a := range im.actions {
		c.actions[p] = a // actions are never mutated in place: apply stores copies
	}
	return c
}

func (im *image) apply(b replog.Batch) {
	if b.HardState != nil {
		im.hs = cloneHardState(*b.HardState)
	}
	for _, a := range b.Actions {
		im.actions[a.Position] = cloneAction(a)
	}
	if b.TruncateBelow != 0 {
		for p := range im.actions {
			if p < b.TruncateBelow {
				delete(im.actions, p)
			}
		}
	}
}

// NewStorage returns an empty memory store.
func NewStorage() *Storage {
	return &Storage{cur: newImage(), durable: newImage()}
}

// InitialState implements [replog.Storage].
func (s *Storage) InitialState() (paxos.HardState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return paxos.HardState{}, err
	}
	return cloneHardState(s.cur.hs), nil
}

// Action implements [replog.Storage].
func (s *Storage) Action(p paxos.Position) (paxos.Action, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return paxos.Action{}, false, err
	}
	a, ok := s.cur.actions[p]
	if !ok {
		return paxos.Action{}, false, nil
	}
	return cloneAction(a), true, nil
}

// Actions implements [replog.Storage].
func (s *Storage) Actions(from, to paxos.Position, maxBytes int) ([]paxos.Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	var ps []paxos.Position
	for p := range s.cur.actions {
		if p >= from && p < to {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	var out []paxos.Action
	size := 0
	for _, p := range ps {
		a := s.cur.actions[p]
		size += replog.ActionSize(a)
		if len(out) > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		out = append(out, cloneAction(a))
	}
	return out, nil
}

// LastPosition implements [replog.Storage].
func (s *Storage) LastPosition() (paxos.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, false, err
	}
	if len(s.cur.actions) == 0 {
		return 0, false, nil
	}
	var last paxos.Position
	for p := range s.cur.actions {
		last = max(last, p)
	}
	return last, true, nil
}

// Save implements [replog.Storage]. A synced Save makes every earlier
// unsynced batch durable too, as a real fsync does.
func (s *Storage) Save(b replog.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	rec := Save{Seq: nextSeq(), Batch: cloneBatch(b)}
	if s.saveErr != nil {
		rec.Err = fmt.Errorf("save: %w", s.saveErr)
		s.saveErr = nil
		s.saves = append(s.saves, rec)
		return rec.Err
	}
	s.saves = append(s.saves, rec)
	s.cur.apply(rec.Batch)
	s.pending = append(s.pending, rec.Batch)
	if b.Sync {
		for _, p := range s.pending {
			s.durable.apply(p)
		}
		s.pending = nil
		s.syncs++
	}
	return nil
}

// Close implements [replog.Storage]. The synced state stays available to
// [Storage.Crash].
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Crash returns a new open store holding only what s had synced, and makes s
// unusable (every later call returns an error wrapping [replog.ErrClosed]), as
// if the process or machine died. It may be called on a closed store.
func (s *Storage) Crash() *Storage {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashed = true
	return &Storage{cur: s.durable.clone(), durable: s.durable.clone()}
}

// FailNextSave makes the next Save return an error wrapping err without
// applying anything.
func (s *Storage) FailNextSave(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveErr = err
}

// Saves returns a copy of the record of every Save call, oldest first.
func (s *Storage) Saves() []Save {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saves)
}

// Syncs returns the number of synced Save calls.
func (s *Storage) Syncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncs
}

// Durable returns copies of the synced hard state and actions (ascending):
// what a crash now would keep.
func (s *Storage) Durable() (paxos.HardState, []paxos.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []paxos.Action
	for _, a := range s.durable.actions {
		out = append(out, cloneAction(a))
	}
	slices.SortFunc(out, func(a, b paxos.Action) int { return cmpPosition(a.Position, b.Position) })
	return cloneHardState(s.durable.hs), out
}

func cmpPosition(a, b paxos.Position) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errCrashed is wrapped into ErrClosed for calls on a crashed store.
var errCrashed = errors.New("store crashed")

func (s *Storage) usable() error {
	switch {
	case s.crashed:
		return fmt.Errorf("memory store: %w: %w", replog.ErrClosed, errCrashed)
	case s.closed:
		return fmt.Errorf("memory store: %w", replog.ErrClosed)
	}
	return nil
}

func cloneMembership(m *paxos.Membership) *paxos.Membership {
	if m == nil {
		return nil
	}
	return &paxos.Membership{Cluster: m.Cluster, Members: slices.Clone(m.Members)}
}

func cloneHardState(hs paxos.HardState) paxos.HardState {
	hs.Membership.Members = slices.Clone(hs.Membership.Members)
	return hs
}

func cloneAction(a paxos.Action) paxos.Action {
	if a.Entry.Data != nil {
		a.Entry.Data = slices.Clone(a.Entry.Data)
	}
	a.Entry.Config = cloneMembership(a.Entry.Config)
	return a
}

func cloneBatch(b replog.Batch) replog.Batch {
	c := replog.Batch{TruncateBelow: b.TruncateBelow, Sync: b.Sync}
	if b.HardState != nil {
		hs := cloneHardState(*b.HardState)
		c.HardState = &hs
	}
	if b.Actions != nil {
		c.Actions = make([]paxos.Action, len(b.Actions))
		for i, a := range b.Actions {
			c.Actions[i] = cloneAction(a)
		}
	}
	return c
}
