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

// WithLegacyValueThreshold makes the store write as format 1 did: values of
// at least n bytes go to Badger's value log, and no action is chunked.
func WithLegacyValueThreshold(o Options, n int64) Options {
	o.legacyValueThreshold = n
	return o
}

// WithMaxValue lowers the largest value the store writes under one key, so
// that small actions are chunked.
func WithMaxValue(o Options, n int) Options {
	o.maxValue = n
	return o
}

// SetTrace sets a function told of every commit a Save makes ("commit " and
// what the transaction held, e.g. "commit action+hardstate") and of every
// sync ("sync"). Set it before the first Save.
func (s *Store) SetTrace(f func(event string)) { s.trace = f }

// ChunkKeys lists the store's chunk keys.
func (s *Store) ChunkKeys() ([][]byte, error) {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixChunk})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, err
}

// FormatMarker returns the store's format marker.
func (s *Store) FormatMarker() (string, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyFormat)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return string(v), err
}

// Allocated returns the bytes of disk blocks allocated to a file.
var Allocated = allocated

// RotationsSeen is the number of memtable rotations Badger's log told of.
func (s *Store) RotationsSeen() int64 { return s.rotation.seen.Load() }

// WALExtent is how much of a write-ahead log the store preallocates for a
// memtable of size m.
var WALExtent = walExtent

// RawDelete deletes a raw key.
func (s *Store) RawDelete(key []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) })
}

// WithSnappy sets the test-only mode where tables are compressed with
// Snappy, as stores were before compression was turned off.
func WithSnappy(o Options) Options {
	o.snappy = true
	return o
}
