package badgerstore

import (
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// RawSet writes a raw key and value, bypassing the codec (to plant corruption).
func (s *Store) RawSet(key, value []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) })
}

// RunGC runs one value-log GC pass now.
func (s *Store) RunGC() { s.runGC() }

// WithBadgerSyncWrites sets the benchmark-only mode where Badger syncs every
// commit itself (SyncWrites) instead of the store.
func WithBadgerSyncWrites(o Options) Options {
	o.badgerSyncWrites = true
	return o
}

// LogSyncs reports the log files the store has synced since Open: write-ahead
// logs, value logs and the directory.
func (s *Store) LogSyncs() (wal, vlog, dir int) {
	s.ls.mu.Lock()
	defer s.ls.mu.Unlock()
	return s.ls.walSyncs, s.ls.vlogSyncs, s.ls.dirSyncs
}

var ActionKey = actionKey

// LastSync reports the log files the last sync synced, and those it found
// deleted meanwhile.
func (s *Store) LastSync() (synced, gone []string) {
	s.ls.mu.Lock()
	defer s.ls.mu.Unlock()
	return slices.Clone(s.ls.lastSynced), slices.Clone(s.ls.lastGone)
}

// SetGCHook sets a function run after each value-log GC pass (with its
// result), before Badger may delete the file the pass rewrote. Set it before
// running GC.
func (s *Store) SetGCHook(f func(error)) { s.gcHook = f }

// Flatten compacts every level of the LSM tree into one, now, so that
// Badger's discard statistics count deleted values.
func (s *Store) Flatten() error { return s.db.Flatten(1) }
