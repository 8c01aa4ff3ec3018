package badgerstore

import (
	"reflect"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger builds every table (a memtable flush, each table a compaction
// writes) in a z.Allocator whose buffers it takes from a pool it keeps in
// the DB (db.allocPool, z.NewAllocatorPool(8)) and gives back when the table
// is written. A pooled allocator keeps every buffer it ever grew (up to 400
// MiB), and the pool frees one only after two seconds without a table being
// built: under load it holds up to eight, each as large as the largest table
// it built (a flush's is about the memtable, twice that with compression).
// That was most of a replica's memory under load (~150 of ~300 MiB). Without
// jemalloc those buffers are ordinary Go memory, so taking the allocators
// out of the pool and releasing them makes them garbage for the Go
// collector, and a builder then grows a fresh allocator, which costs little
// beside writing the table.
//
// Badger has no option for the pool, so the store reads the field (never
// writes it: Badger sets it once, before Open returns, so the read is
// ordered after that write) and drains the pool every allocDrainInterval.
// The pool's Get and Return are safe for concurrent use; a drained
// allocator is one no builder holds.

// allocDrainInterval is how often the store empties Badger's allocator
// pool: a flush of the default memtable takes some tens of milliseconds, so
// a pooled allocator lives a few flushes at most.
const allocDrainInterval = 200 * time.Millisecond

// allocPoolSize is the capacity of Badger's pool (z.NewAllocatorPool(8) in
// badger.Open).
const allocPoolSize = 8

// allocPoolOf returns db's table-builder allocator pool, or nil if this
// version of Badger keeps none where the store looks (a test fails then).
func allocPoolOf(db *badger.DB) *z.AllocatorPool {
	v := reflect.ValueOf(db).Elem().FieldByName("allocPool")
	if !v.IsValid() || v.Type() != reflect.TypeFor[*z.AllocatorPool]() || v.IsNil() {
		return nil
	}
	return (*z.AllocatorPool)(v.UnsafePointer())
}

// drainAllocPool releases every allocator pooled in p. Get hands out a
// pooled allocator or, once the pool is empty, a new one of 512 bytes;
// either way Release drops it (without jemalloc, Free is a no-op and the
// buffers are left to the Go collector).
func drainAllocPool(p *z.AllocatorPool) {
	for range allocPoolSize {
		p.Get(0, "regent drain").Release()
	}
}
