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
	DefaultBlockCacheSize = 8 << 20
	DefaultIndexCacheSize = 4 << 20
	DefaultValueThreshold = 64 << 10
	DefaultGCInterval     = 5 * time.Minute
	DefaultGCDiscardRatio = 0.5
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
	// [DefaultMemTableSize]); two memtables at most. One Save must stay
	// within about 15% of it, not counting values of ValueThreshold bytes or
	// more; a larger batch is split (see [Store.Save]).
	MemTableSize int64
	// BlockCacheSize and IndexCacheSize bound Badger's caches (defaults
	// [DefaultBlockCacheSize], [DefaultIndexCacheSize]).
	BlockCacheSize int64
	IndexCacheSize int64
	// ValueThreshold: values of at least this many bytes go to the value
	// log (default [DefaultValueThreshold]). A Save holding one is synced
	// whatever Batch.Sync says, value log first (see [Store.Save]).
	ValueThreshold int64

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
	if o.ValueThreshold <= 0 {
		o.ValueThreshold = DefaultValueThreshold
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
	prefixAct   = []byte("a") // + 8-byte big-endian position
	formatValue = []byte("regent-replog v1")
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
// (not in read-only mode), which Close stops and waits for.
type Store struct {
	dir  string
	opts Options
	log  hclog.Logger
	db   *badger.DB
	lock *dirLock
	ls   *logSync // nil when read-only or with badgerSyncWrites
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
	db, err := openBadger(dir, opts)
	if err != nil {
		return nil, err
	}
	s = &Store{dir: dir, opts: opts, log: opts.Logger, db: db, lock: lock, stop: make(chan struct{})}
	if !opts.ReadOnly && !opts.badgerSyncWrites {
		if s.ls, err = newLogSync(dir); err != nil {
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
	if !opts.ReadOnly && opts.GCInterval > 0 {
		s.wg.Add(1)
		go s.gcLoop()
	}
	return s, nil
}

func badgerOptions(dir string, opts Options) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger.Named("badger")}).
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
		WithValueThreshold(opts.ValueThreshold).
		WithValueLogFileSize(16 << 20).
		WithChecksumVerificationMode(options.OnTableRead).
		WithDetectConflicts(false). // one writer: the driver goroutine
		WithMetricsEnabled(false).
		WithNumGoroutines(2)
	bo.CompactL0OnClose = !opts.ReadOnly
	return bo
}

// openBadger opens Badger, turning its errors (which carry no wrapped cause)
// into regent's: corruption is anything but a resource shortage.
func openBadger(dir string, opts Options) (db *badger.DB, err error) {
	defer func() {
		// Badger panics on some malformed files.
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open store %s: %w: badger panicked: %v", dir, replog.ErrCorrupt, r)
		}
	}()
	db, err = badger.Open(badgerOptions(dir, opts))
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
	case format != nil && !bytes.Equal(format, formatValue):
		return fmt.Errorf("%w: store format %q, this binary reads %q", replog.ErrCorrupt, format, formatValue)
	case format != nil:
		return nil
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
			a, err = decodeAction(p, v)
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
			size += int(item.ValueSize()) - crcLen
			if len(out) > 0 && maxBytes > 0 && size > maxBytes {
				return nil
			}
			err := item.Value(func(v []byte) error {
				a, err := decodeAction(p, v)
				out = append(out, a)
				return err
			})
			if err != nil {
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

// Save implements [replog.Storage]. The batch is normally one Badger
// transaction, committed without a sync; a synced batch then syncs Badger's
// write-ahead log (see logSync), which makes every earlier Save durable too.
// A batch holding a value of ValueThreshold bytes or more, which Badger puts
// in its value log, is synced whatever b.Sync says, value log first: the
// pointer Badger keeps in its write-ahead log must never outlive the value.
// A batch too large for one
// transaction is split: its actions first, in as many transactions as
// needed, then the hard state; a crash in between leaves some of the actions
// without the hard state, as if only some of the messages that produced
// them had arrived (nothing of the batch was sent yet). A truncation too
// large for the batch's transaction is recorded there and finished in
// further transactions before Save returns (or by the next Open after a
// crash); reads hide the positions being deleted meanwhile.
func (s *Store) Save(b replog.Batch) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("save: %w", replog.ErrClosed)
	}
	if s.opts.ReadOnly {
		return errors.New("save: store opened read-only")
	}
	if err := s.save(b); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func (s *Store) save(b replog.Batch) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	// set adds one write, committing the transaction and starting another
	// when it is full.
	set := func(k, v []byte) error {
		err := txn.Set(k, v)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			err = txn.Set(k, v)
		}
		return err
	}
	var buf []byte
	values := false // a value goes to Badger's value log
	for i := range b.Actions {
		a := &b.Actions[i]
		if b.TruncateBelow != 0 && a.Position < b.TruncateBelow {
			continue // deleted by this very batch
		}
		// Badger keeps the value slice until the commit: one buffer each.
		buf = seal(replog.AppendAction(make([]byte, 0, replog.ActionSize(*a)+crcLen), *a))
		values = values || int64(len(buf)) >= s.opts.ValueThreshold
		if err := set(actionKey(a.Position), buf); err != nil {
			return fmt.Errorf("write action at position %d: %w", a.Position, err)
		}
	}
	if b.HardState != nil {
		v := seal(replog.EncodeHardState(*b.HardState))
		values = values || int64(len(v)) >= s.opts.ValueThreshold
		if err := set(keyMeta, v); err != nil {
			return fmt.Errorf("write hard state: %w", err)
		}
	}
	done := true
	if b.TruncateBelow != 0 {
		var err error
		done, err = s.deleteIn(txn, b.TruncateBelow)
		if err != nil {
			return fmt.Errorf("truncate below %d: %w", b.TruncateBelow, err)
		}
		if !done {
			// Hide the range from readers until it is gone.
			s.truncating.Store(uint64(b.TruncateBelow))
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(b.TruncateBelow))
			if err := set(keyTruncate, v[:]); err != nil {
				return fmt.Errorf("truncate below %d: %w", b.TruncateBelow, err)
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if !done {
		if err := s.deleteBelow(b.TruncateBelow); err != nil {
			return fmt.Errorf("truncate below %d: %w", b.TruncateBelow, err)
		}
	}
	if b.Sync || values {
		return s.syncLogs(values)
	}
	return nil
}

// maxDeletesPerTxn bounds the deletes a truncation adds to one transaction.
const maxDeletesPerTxn = 4096

// deleteIn deletes actions below p within txn, up to maxDeletesPerTxn of
// them; it reports whether none is left.
func (s *Store) deleteIn(txn *badger.Txn, p paxos.Position) (bool, error) {
	var keys [][]byte
	more := false
	err := s.db.View(func(rtx *badger.Txn) error {
		it := rtx.NewIterator(badger.IteratorOptions{Prefix: prefixAct})
		defer it.Close()
		end := actionKey(p)
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k, end) >= 0 {
				return nil
			}
			if len(keys) == maxDeletesPerTxn {
				more = true
				return nil
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) {
				return false, nil
			}
			return false, err
		}
	}
	return !more, nil
}

// deleteBelow deletes every action below p in transactions of at most
// maxDeletesPerTxn deletes, then clears the truncation marker.
func (s *Store) deleteBelow(p paxos.Position) error {
	for {
		txn := s.db.NewTransaction(true)
		done, err := s.deleteIn(txn, p)
		if err == nil && done {
			err = txn.Delete(keyTruncate)
		}
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	s.truncating.Store(0)
	return nil
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
	return nil
}

// Close implements [replog.Storage]: it stops value-log GC, closes Badger
// (compacting level 0 first) and releases the locks. Idempotent.
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
	err := s.db.Close()
	if s.ls != nil {
		s.ls.close()
	}
	s.lock.release()
	if err = errors.Join(serr, err); err != nil {
		return fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// gcLoop runs value-log GC every GCInterval until Close.
func (s *Store) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.runGC()
		}
	}
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
// drops the rest.
type badgerLogger struct{ l hclog.Logger }

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

// Debugf drops the message.
func (badgerLogger) Debugf(string, ...any) {}
