package badgerstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// Defaults for the zero values of [Options].
const (
	DefaultMemTableSize   = 8 << 20
	DefaultBlockCacheSize = 0
	DefaultIndexCacheSize = 4 << 20
	DefaultGCInterval     = 5 * time.Minute
	DefaultGCDiscardRatio = 0.5
	// DefaultFreeSpaceReserve, in memtables: the default reserve is this
	// many times MemTableSize (24 MiB with the default memtable).
	DefaultFreeSpaceReserve = 3
)

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// Logger receives Badger's warnings and errors (named "badger") and the
	// store's own lifecycle logs. Nil discards them.
	Logger hclog.Logger

	// ReadOnly opens an existing store for inspection (regent log inspect):
	// no writes, no value-log GC, and a shared lock, so it fails while a
	// master holds the store. Save returns an error.
	ReadOnly bool

	// MemTableSize is Badger's memtable size (default
	// [DefaultMemTableSize]); two memtables at most. One Badger transaction
	// holds about 15% of it; a larger Save is split (see [Store.Save]). It
	// also bounds the largest value the store writes under one key: the
	// smaller of 1 MiB (Badger's maximum ValueThreshold) and 15% of it, so
	// a memtable of less than 7 MiB makes large actions take more chunks.
	MemTableSize int64
	// BlockCacheSize bounds Badger's block cache (default
	// [DefaultBlockCacheSize]: none). The store writes tables without
	// compression, so a block is read in place from the mapped table and a
	// cache would only copy it; a cache helps a store that still holds
	// Snappy-compressed tables from an older build, whose blocks are
	// decompressed on every read without one. IndexCacheSize bounds the
	// cache of table indexes (default [DefaultIndexCacheSize]).
	BlockCacheSize int64
	IndexCacheSize int64

	// FreeSpaceReserve is the free space, in bytes, the file system of the
	// store's directory must keep besides the batch itself for Save to
	// write: room for what Badger may write through memory-mapped files,
	// where a page the file system cannot back is SIGBUS, not an error,
	// during a Save and the work it triggers. The store preallocates each
	// write-ahead log (a failure is a clean error), so what remains is the
	// first transaction a memtable rotation writes into a new log before
	// the store sees it (up to 45% of MemTableSize), the level-0 table the
	// flush builds (about MemTableSize) and the tables of the compaction
	// that may follow (written before the ones they replace are deleted).
	// Below it Save returns a [*NoSpaceError] instead. Zero means
	// [DefaultFreeSpaceReserve] × MemTableSize; negative disables the
	// check. It guards the store's own writes: a disk filled by someone
	// else while Badger flushes or compacts can still end the process.
	FreeSpaceReserve int64

	// GCInterval is the period of value-log garbage collection (default
	// [DefaultGCInterval]; negative disables it). GCDiscardRatio is the
	// share of a value-log file that must be garbage before it is rewritten
	// (default [DefaultGCDiscardRatio]).
	GCInterval     time.Duration
	GCDiscardRatio float64

	// badgerSyncWrites runs Badger with SyncWrites, which syncs the
	// write-ahead log and the current value-log file on every commit,
	// instead of the store's own syncing (see logSync). Only for the
	// benchmark that compares the two.
	badgerSyncWrites bool
	// maxValue, for tests, lowers the largest sealed value written under
	// one key (default: the largest Badger keeps out of its value log).
	maxValue int
	// snappy, for tests, compresses table blocks with Snappy, as stores
	// did before the store turned compression off.
	snappy bool
	// legacyValueThreshold, for tests, writes as the format-1 store did:
	// Badger's ValueThreshold at this value and no chunks, so values of
	// this size or more go to the value log.
	legacyValueThreshold int64
}

// badgerMaxValueThreshold is the largest ValueThreshold Badger v4 accepts
// (options.go, maxValueThreshold); it also refuses one above 15% of
// MemTableSize, its largest transaction.
const badgerMaxValueThreshold = 1 << 20

// valueThreshold is Badger's ValueThreshold: values shorter than it stay in
// the LSM tree and its write-ahead log, longer ones go to the value log.
func (o Options) valueThreshold() int64 {
	if o.legacyValueThreshold > 0 {
		return o.legacyValueThreshold
	}
	return min(badgerMaxValueThreshold, 15*o.MemTableSize/100)
}

// maxValueLen is the largest sealed value the store writes under one key:
// below Badger's ValueThreshold, so it never goes to the value log, and with
// its key within one transaction. Larger actions are written as chunks.
func (o Options) maxValueLen() int {
	if o.legacyValueThreshold > 0 {
		return math.MaxInt
	}
	m := int(o.valueThreshold()) - 64
	if o.maxValue > 0 {
		m = min(m, o.maxValue)
	}
	return m
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = DefaultBlockCacheSize
	}
	if o.IndexCacheSize <= 0 {
		o.IndexCacheSize = DefaultIndexCacheSize
	}
	if o.FreeSpaceReserve == 0 {
		o.FreeSpaceReserve = DefaultFreeSpaceReserve * o.MemTableSize
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.GCDiscardRatio <= 0 || o.GCDiscardRatio >= 1 {
		o.GCDiscardRatio = DefaultGCDiscardRatio
	}
	return o
}

// ErrUnclean is returned by a read-only Open of a store whose last writer
// did not close it (a master that was killed): its write-ahead log must be
// replayed, which only a read-write Open does. It is not corruption.
var ErrUnclean = errors.New("store was not closed cleanly: start its master once, or open it read-write, to replay its log")

// Keys. Actions are keyed by prefix and big-endian position, so Badger's
// byte order is position order.
var (
	keyFormat   = []byte("f") // formatValue
	keyMeta     = []byte("m") // the hard state
	keyTruncate = []byte("t") // a truncation in progress: 8-byte position
	prefixAct   = []byte("a") // + 8-byte big-endian position: the action or its chunks' descriptor
	// formatValue is the current format: 2 added chunks (prefixChunk) and
	// never writes to Badger's value log. A format-1 store is a valid
	// format-2 store whose actions are all unchunked (some of its values may
	// be in the value log, which Badger still reads): a read-write Open
	// rewrites its marker.
	formatValue  = []byte("regent-replog v2")
	formatValue1 = []byte("regent-replog v1")
)

const actionKeyLen = 9

func actionKey(p paxos.Position) []byte {
	k := make([]byte, actionKeyLen)
	k[0] = prefixAct[0]
	binary.BigEndian.PutUint64(k[1:], uint64(p))
	return k
}

func keyPosition(k []byte) (paxos.Position, bool) {
	if len(k) != actionKeyLen || k[0] != prefixAct[0] {
		return 0, false
	}
	return paxos.Position(binary.BigEndian.Uint64(k[1:])), true
}

// Values are the replog codec's encoding followed by its CRC-32C, so a
// flipped bit on disk is reported as corruption rather than decoded.
const crcLen = 4

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func seal(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func unseal(v []byte) ([]byte, error) {
	if len(v) < crcLen+1 {
		return nil, fmt.Errorf("%w: value of %d bytes", replog.ErrCorrupt, len(v))
	}
	body, sum := v[:len(v)-crcLen], binary.BigEndian.Uint32(v[len(v)-crcLen:])
	if got := crc32.Checksum(body, crcTable); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", replog.ErrCorrupt, got, sum)
	}
	return body, nil
}

// Store is a [replog.Storage] on Badger v4. It holds Badger's directory lock
// (and its own) from Open to Close.
//
// Goroutines: besides Badger's own, Open starts one value-log GC goroutine
// and one that drains Badger's table-builder allocator pool (see
// drainAllocPool), neither in read-only mode; Close stops and waits for
// them.
type Store struct {
	dir  string
	opts Options
	log  hclog.Logger
	db   *badger.DB
	lock *dirLock
	ls   *logSync // nil when read-only or with badgerSyncWrites
	// maxValue is opts.maxValueLen().
	maxValue int
	// trace, for tests, is told of every commit a Save makes (with what the
	// transaction held) and every sync.
	trace func(event string)
	// rotation is raised by Badger's logger on a memtable rotation.
	rotation *rotationSignal
	// gcHook, for tests, runs after each value-log GC pass, before the file
	// it rewrote may be deleted.
	gcHook func(error)

	// mu guards closed: every call holds it shared for its whole length,
	// so Close (which takes it exclusively) waits for calls in progress.
	mu     sync.RWMutex
	closed bool
	// truncating, while non-zero, is a position below which actions are
	// being deleted; reads hide them.
	truncating atomic.Uint64

	// wmu serializes writers (Save, and Open's repairs) and guards what
	// follows.
	wmu sync.Mutex
	// chunked holds the chunks of every chunked action, by position, so a
	// write over one can delete them. nextGen is the next chunk generation.
	chunked map[paxos.Position]chunkRef
	nextGen uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

var _ replog.Storage = (*Store)(nil)

// Open opens (creating if needed) the store in dir, normally
// <work_dir>/replicated_log. It returns a *[replog.InUseError] if another
// process holds the store, and an error wrapping [replog.ErrCorrupt] if the
// store is unreadable, was not written by regent, or has a format this
// binary does not know; it never resets a store.
func Open(dir string, opts Options) (s *Store, err error) {
	opts = opts.withDefaults()
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	lock, err := lockDir(dir, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.release()
		}
	}()
	rotation := &rotationSignal{}
	db, err := openBadger(dir, opts, rotation)
	if err != nil {
		return nil, err
	}
	s = &Store{dir: dir, opts: opts, log: opts.Logger, db: db, lock: lock, stop: make(chan struct{}),
		maxValue: opts.maxValueLen(), chunked: map[paxos.Position]chunkRef{}, nextGen: 1, rotation: rotation}
	if !opts.ReadOnly && !opts.badgerSyncWrites {
		ls, lerr := newLogSync(dir, opts.MemTableSize, rotation)
		if lerr != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, lerr)
		}
		s.ls = ls
		defer func() {
			if err != nil {
				ls.close() // its descriptors, whichever step failed
			}
		}()
		// Back every page of the write-ahead logs now, so a write to them
		// can never fault for lack of space (see NoSpaceError).
		if err := s.ls.preallocateWALs(); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		// What Badger replayed from its logs may not be on disk yet (a
		// process that was killed leaves it in the page cache): make it
		// durable before anything builds on it.
		if err := s.syncLogs(true); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	if err := s.checkFormat(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := s.resumeTruncation(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := s.loadChunks(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if !opts.ReadOnly && opts.GCInterval > 0 {
		s.every(opts.GCInterval, s.runGC) // value-log GC
	}
	if pool := allocPoolOf(db); pool != nil && !opts.ReadOnly {
		s.every(allocDrainInterval, func() { drainAllocPool(pool) })
	}
	return s, nil
}

func badgerOptions(dir string, opts Options, rotation *rotationSignal) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{l: opts.Logger.Named("badger"), rotation: rotation}).
		WithSyncWrites(opts.badgerSyncWrites).
		WithReadOnly(opts.ReadOnly).
		WithNumVersionsToKeep(1).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithNumCompactors(2).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(opts.IndexCacheSize).
		WithValueThreshold(opts.valueThreshold()).
		WithValueLogFileSize(16 << 20).
		// No block compression: a table builder then writes each block
		// once (with Snappy it keeps the block and its compressed copy,
		// twice the memory, while entries are mostly small protobufs and
		// user data that compress little), compactions read blocks in
		// place from the mapped table instead of decompressing each into
		// a new buffer, and both take less CPU. Under load a replica's
		// anonymous memory halves (about 150 to 70 MiB with 256 writers;
		// see allocpool.go for the rest). The cost is table size on disk,
		// bounded by truncation. Tables written with Snappy stay readable:
		// Badger records each table's compression in its manifest.
		WithCompression(options.None).
		// Checksums are verified on every block read (the catch-up
		// responder's reads, compactions, recovery), not by reading each
		// table whole when it is opened: Badger opens every table a flush or
		// compaction has just built, and verifying those took 12 % of a
		// catching-up replica's CPU for nothing that a block read would
		// not catch.
		WithChecksumVerificationMode(options.OnBlockRead).
		WithDetectConflicts(false). // one writer: the driver goroutine
		WithMetricsEnabled(false).
		WithNumGoroutines(2)
	if opts.snappy {
		// Badger refuses compression without a block cache.
		bo = bo.WithCompression(options.Snappy).WithBlockCacheSize(max(opts.BlockCacheSize, 8<<20))
	}
	bo.CompactL0OnClose = !opts.ReadOnly
	return bo
}

// openBadger opens Badger, turning its errors (which carry no wrapped cause)
// into regent's: corruption is anything but a resource shortage.
func openBadger(dir string, opts Options, rotation *rotationSignal) (db *badger.DB, err error) {
	defer func() {
		// Badger panics on some malformed files.
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open store %s: %w: badger panicked: %v", dir, replog.ErrCorrupt, r)
		}
	}()
	db, err = badger.Open(badgerOptions(dir, opts, rotation))
	if err == nil {
		return db, nil
	}
	msg := err.Error()
	if opts.ReadOnly && strings.Contains(msg, "Log truncate required") {
		return nil, fmt.Errorf("open store %s: %w", dir, ErrUnclean)
	}
	for _, transient := range []string{"too many open files", "no space left", "cannot allocate memory", "permission denied", "Another process is using"} {
		if strings.Contains(msg, transient) {
			if transient == "Another process is using" {
				return nil, &replog.InUseError{Dir: dir, Err: err}
			}
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	return nil, fmt.Errorf("open store %s: %w: %w", dir, replog.ErrCorrupt, err)
}

// checkFormat writes the format marker into an empty store and checks it in
// an existing one.
func (s *Store) checkFormat() error {
	var format []byte
	empty := true
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		item, err := txn.Get(keyFormat)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		format, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("read format: %w", err)
	}
	switch {
	case bytes.Equal(format, formatValue1) && !s.opts.ReadOnly:
		s.log.Info("upgrading the store format", "from", string(formatValue1), "to", string(formatValue))
	case bytes.Equal(format, formatValue1) || bytes.Equal(format, formatValue):
		return nil
	case format != nil:
		return fmt.Errorf("%w: store format %q, this binary reads %q and %q", replog.ErrCorrupt, format, formatValue1, formatValue)
	case !empty:
		return fmt.Errorf("%w: not a regent replicated log (no format marker)", replog.ErrCorrupt)
	case s.opts.ReadOnly:
		return nil
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, formatValue) }); err != nil {
		return fmt.Errorf("write format: %w", err)
	}
	return s.syncLogs(false)
}

// resumeTruncation finishes a truncation a crash interrupted.
func (s *Store) resumeTruncation() error {
	var below paxos.Position
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyTruncate)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: truncation marker of %d bytes", replog.ErrCorrupt, len(v))
			}
			below = paxos.Position(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil || below == 0 {
		return err
	}
	s.truncating.Store(uint64(below))
	if s.opts.ReadOnly {
		return nil // reads hide the positions being deleted
	}
	s.log.Warn("finishing an interrupted truncation", "position", below)
	return s.deleteBelow(below)
}

// InitialState implements [replog.Storage].
func (s *Store) InitialState() (paxos.HardState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return paxos.HardState{}, fmt.Errorf("read hard state: %w", replog.ErrClosed)
	}
	var hs paxos.HardState
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyMeta)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			body, err := unseal(v)
			if err != nil {
				return err
			}
			hs, err = replog.DecodeHardState(body)
			return err
		})
	})
	if err != nil {
		return paxos.HardState{}, fmt.Errorf("read hard state: %w", err)
	}
	return hs, nil
}

func decodeAction(p paxos.Position, v []byte) (paxos.Action, error) {
	body, err := unseal(v)
	if err != nil {
		return paxos.Action{}, fmt.Errorf("action at position %d: %w", p, err)
	}
	a, err := replog.DecodeAction(body)
	if err != nil {
		return paxos.Action{}, fmt.Errorf("action at position %d: %w", p, err)
	}
	if a.Position != p {
		return paxos.Action{}, fmt.Errorf("%w: action for position %d stored at position %d", replog.ErrCorrupt, a.Position, p)
	}
	return a, nil
}

// Action implements [replog.Storage].
func (s *Store) Action(p paxos.Position) (paxos.Action, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return paxos.Action{}, false, fmt.Errorf("read action at position %d: %w", p, replog.ErrClosed)
	}
	if p < paxos.Position(s.truncating.Load()) {
		return paxos.Action{}, false, nil
	}
	var a paxos.Action
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(actionKey(p))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(v []byte) error {
			sealed, err := sealedValue(txn, p, v)
			if err != nil {
				return fmt.Errorf("action at position %d: %w", p, err)
			}
			a, err = decodeAction(p, sealed)
			return err
		})
	})
	if err != nil {
		return paxos.Action{}, false, fmt.Errorf("read action at position %d: %w", p, err)
	}
	return a, found, nil
}

// Actions implements [replog.Storage].
func (s *Store) Actions(from, to paxos.Position, maxBytes int) ([]paxos.Action, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("read actions [%d, %d): %w", from, to, replog.ErrClosed)
	}
	from = max(from, paxos.Position(s.truncating.Load()))
	if from >= to {
		return nil, nil
	}
	var out []paxos.Action
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAct})
		defer it.Close()
		size := 0
		for it.Seek(actionKey(from)); it.Valid(); it.Next() {
			item := it.Item()
			p, ok := keyPosition(item.Key())
			if !ok {
				return fmt.Errorf("%w: unexpected key %x", replog.ErrCorrupt, item.Key())
			}
			if p >= to {
				return nil
			}
			full := false
			err := item.Value(func(v []byte) error {
				n, err := storedSize(v)
				if err != nil {
					return fmt.Errorf("action at position %d: %w", p, err)
				}
				if size += n; len(out) > 0 && maxBytes > 0 && size > maxBytes {
					full = true
					return nil
				}
				sealed, err := sealedValue(txn, p, v)
				if err != nil {
					return fmt.Errorf("action at position %d: %w", p, err)
				}
				a, err := decodeAction(p, sealed)
				out = append(out, a)
				return err
			})
			if err != nil || full {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read actions [%d, %d): %w", from, to, err)
	}
	return out, nil
}

// LastPosition implements [replog.Storage].
func (s *Store) LastPosition() (paxos.Position, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false, fmt.Errorf("read last position: %w", replog.ErrClosed)
	}
	var last paxos.Position
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAct, Reverse: true})
		defer it.Close()
		it.Seek(actionKey(math.MaxUint64))
		if !it.Valid() {
			return nil
		}
		p, ok := keyPosition(it.Item().Key())
		if !ok {
			return fmt.Errorf("%w: unexpected key %x", replog.ErrCorrupt, it.Item().Key())
		}
		last, found = p, p >= paxos.Position(s.truncating.Load())
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("read last position: %w", err)
	}
	if !found {
		return 0, false, nil
	}
	return last, true, nil
}

// syncLogs makes every commit so far durable; values says whether the value
// log must be synced too.
func (s *Store) syncLogs(values bool) error {
	if s.ls == nil {
		return nil // read-only, or Badger's SyncWrites synced every commit
	}
	if err := s.ls.sync(values); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if s.trace != nil {
		s.trace("sync")
	}
	return nil
}

// Close implements [replog.Storage]: it stops value-log GC, closes Badger
// (compacting level 0 first) and releases the locks. Idempotent. On a file
// system with less free space than [Options.FreeSpaceReserve] it leaves
// Badger open, its logs synced, and returns a wrapped [*NoSpaceError]: the
// process must then exit (the next Open, by another process, replays the
// logs; one by this process would find the store in use).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	// Badger does not sync its logs on close with SyncWrites off.
	serr := s.syncLogs(true)
	var err error
	if nerr := s.checkCloseSpace(); nerr != nil {
		// Badger's Close flushes the memtable into a table it writes
		// through a mapping (and compacts level 0): on a full file system
		// that is SIGBUS. Leave it open instead, as a killed process
		// would: its logs are synced and the next Open replays them.
		// Its goroutines and directory lock last until the process exits.
		err = fmt.Errorf("storage engine left open: %w", nerr)
	} else {
		err = s.db.Close()
	}
	if s.ls != nil {
		s.ls.close()
	}
	s.lock.release()
	if err = errors.Join(serr, err); err != nil {
		return fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return nil
}

// checkCloseSpace returns a *NoSpaceError when the file system has less free
// space than the reserve, which covers the table Badger's Close writes.
func (s *Store) checkCloseSpace() error {
	if s.opts.ReadOnly || s.opts.FreeSpaceReserve < 0 {
		return nil
	}
	free, err := freeBytes(s.dir)
	if err != nil {
		return nil // nothing better to go by: close
	}
	if free < uint64(s.opts.FreeSpaceReserve) {
		return &NoSpaceError{Dir: s.dir, Free: free, Reserve: uint64(s.opts.FreeSpaceReserve)}
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// every runs f every d until Close, on a goroutine of its own that Close
// waits for.
func (s *Store) every(d time.Duration, f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// runGC rewrites value-log files while Badger finds one worth rewriting.
func (s *Store) runGC() {
	for range 16 {
		select {
		case <-s.stop:
			return
		default:
		}
		err := s.gcOnce()
		switch {
		case err == nil:
			s.log.Debug("value log file rewritten")
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		default:
			s.log.Warn("value log gc failed", "error", err)
		}
		return
	}
}

// gcOnce runs one value-log GC pass. Badger rewrites the live values of a
// value-log file into the current one and then deletes the old file, without
// syncing anything when SyncWrites is off; but it defers the deletion while
// an iterator is open (Badger 4.9.6, valueLog.rewrite) until the last one
// closes. So an iterator is held open across the pass, the moved values and
// their new pointers are synced, and only then is the iterator closed and
// the old file deleted.
func (s *Store) gcOnce() error {
	txn := s.db.NewTransaction(false)
	it := txn.NewIterator(badger.IteratorOptions{})
	defer func() {
		it.Close()
		txn.Discard()
	}()
	err := s.db.RunValueLogGC(s.opts.GCDiscardRatio)
	if err == nil && s.ls != nil {
		// The rewrite went through Badger's own writes, which may have
		// rotated the memtable.
		if serr := s.ls.preallocateWALs(); serr != nil {
			return serr
		}
	}
	if err == nil {
		if serr := s.syncLogs(true); serr != nil {
			return serr
		}
	}
	if s.gcHook != nil {
		s.gcHook(err)
	}
	return err
}

// badgerLogger passes Badger's warnings and errors to an hclog.Logger and
// drops the rest, but for the message of a memtable rotation, which raises
// rotation (if not nil).
type badgerLogger struct {
	l        hclog.Logger
	rotation *rotationSignal
}

// Errorf logs at Error.
func (b badgerLogger) Errorf(f string, args ...any) {
	b.l.Error("storage engine error", "detail", strings.TrimSpace(fmt.Sprintf(f, args...)))
}

// Warningf logs at Warn.
func (b badgerLogger) Warningf(f string, args ...any) {
	b.l.Warn("storage engine warning", "detail", strings.TrimSpace(fmt.Sprintf(f, args...)))
}

// Infof drops the message.
func (badgerLogger) Infof(string, ...any) {}

// rotationMessage starts the message Badger 4.9.6 logs at Debug when it
// rotates the memtable (DB.ensureRoomForWrite), before it creates the new
// write-ahead log.
const rotationMessage = "Flushing memtable, mt.size="

// Debugf drops the message, raising the rotation signal on a memtable
// rotation.
func (b badgerLogger) Debugf(f string, _ ...any) {
	if b.rotation != nil && strings.HasPrefix(f, rotationMessage) {
		b.rotation.raise()
	}
}
