package badgerstore

import (
	"github.com/dgraph-io/badger/v4"
)

// RawSet writes a raw key and value, bypassing the codec (to plant corruption).
func (s *Store) RawSet(key, value []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) })
}

// RunGC runs one value-log GC pass now.
func (s *Store) RunGC() { s.runGC() }

// WithExplicitSync sets the benchmark-only sync mode.
func WithExplicitSync(o Options) Options {
	o.syncExplicit = true
	return o
}

var ActionKey = actionKey
