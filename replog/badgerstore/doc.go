// Package badgerstore implements replog.Storage on Badger v4, in the
// directory <work_dir>/replicated_log. It is the only package that imports
// Badger; it must not import the master, the supervisor or net.
//
// Layout: one key per stored position ("a" + 8-byte big-endian position, so
// key order is position order), one metadata key for the hard state, a format
// marker, and a marker for a truncation in progress. Values are the replog
// codec's encoding followed by a CRC-32C; a mismatch is reported as
// replog.ErrCorrupt, never repaired silently.
//
// Durability: Badger runs without SyncWrites and the store syncs its logs
// itself: a synced Save (one transaction) costs one fdatasync of Badger's
// write-ahead log, and the value log only when a value went there; an
// unsynced Save costs none. Saves become durable in order (a synced Save
// syncs every write-ahead log that may hold earlier commits). Value-log GC
// syncs the values it moved before Badger may delete the file it rewrote.
// Group commit happens one level up, where the driver puts everything one
// Ready holds into one Save.
//
// Concurrency: every method is safe for concurrent use; Save is meant to be
// called from one goroutine. A Store owns one goroutine of its own, the
// value-log GC loop, started by Open and stopped by Close.
package badgerstore
