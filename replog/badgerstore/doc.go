// Package badgerstore implements replog.Storage on Badger v4, in the
// directory <work_dir>/replicated_log. It is the only package that imports
// Badger; it must not import the master, the supervisor or net.
//
// Layout (format "regent-replog v2"): one key per stored position ("a" +
// 8-byte big-endian position, so key order is position order), one metadata
// key for the hard state, a format marker, and a marker for a truncation in
// progress. Values are the replog codec's encoding followed by a CRC-32C; a
// mismatch is reported as replog.ErrCorrupt, never repaired silently. An
// action whose value would be too large for Badger's LSM tree (1 MiB with the
// default memtable) is stored as chunks under keys of their own ("c" +
// position + generation + index), which its position's key names; the CRC
// covers the chunks concatenated. So no value ever goes to Badger's value log,
// whose pointers could outlive their values after a power loss. A format-1
// store (no chunks, values of 64 KiB or more in the value log) is read as it
// is and its marker rewritten by the first read-write Open.
//
// Durability: Badger runs without SyncWrites and the store syncs its logs
// itself: a synced Save (one transaction) costs one fdatasync of Badger's
// write-ahead log, found by listing the directory (a few µs, so that no
// rotation Badger did not announce can hide a log); an unsynced Save costs
// none. Saves become durable in
// order (a synced Save syncs every write-ahead log that may hold earlier
// commits). A Save that spans transactions syncs between them where a later
// one must never be durable without an earlier one, which after a power loss
// across a memtable rotation it could be: chunks before the key naming them,
// actions before the hard state, a truncation's hard state and marker before
// its further deletes, the deletes before the marker is removed (see
// Store.Save). Value-log GC, for values a format-1 store put there, syncs the
// values it moved before Badger may delete the file it rewrote.
// Group commit happens one level up, where the driver puts everything one
// Ready holds into one Save.
//
// Space: Badger writes its write-ahead logs and tables through memory-mapped
// files, where a full file system is SIGBUS, not an error. The store
// preallocates each write-ahead log as far as Badger may write into it, and
// Save refuses with a *NoSpaceError while the file system has less free
// space than Options.FreeSpaceReserve plus the batch.
//
// Concurrency: every method is safe for concurrent use; Save is meant to be
// called from one goroutine (concurrent Saves are serialized). A Store owns
// two goroutines of its own, the value-log GC loop and the loop that drains
// Badger's table-builder allocator pool (so pooled buffers do not pile up
// under load), started by Open and stopped by Close.
package badgerstore
