package badgerstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// Save implements [replog.Storage].
//
// The batch is normally one Badger transaction, committed without a sync; a
// synced batch then syncs Badger's write-ahead log (see logSync), which makes
// every earlier Save durable too. Before writing, Save checks that the file
// system keeps [Options.FreeSpaceReserve] bytes free besides the batch, and
// returns a [*NoSpaceError] if not.
//
// No value ever goes to Badger's value log: an action whose sealed encoding
// is larger than the largest value Badger keeps in its LSM tree is written as
// chunks under keys of their own, and its position's key, which makes the
// position exist, names them (see chunk.go). A batch too large for one
// transaction is split, and the order of its transactions is kept durable
// even across a memtable rotation, where a power loss may keep a later
// write-ahead log's pages and lose an earlier one's:
//
//   - chunks first, then a sync, then the keys naming them: a position is
//     never durable without its chunks;
//   - actions, then the hard state in the last transaction, synced before
//     it when earlier transactions were committed: a crash leaves some of the
//     actions without the hard state, as if only some of the messages that
//     produced them had arrived (nothing of the batch was sent yet), never
//     the hard state without them;
//   - a truncation too large for that last transaction records a marker
//     there, and that transaction is synced before the deletes go on in
//     further transactions (finished before Save returns, or by the next
//     Open after a crash); reads hide the positions being deleted meanwhile.
//     The deletes are synced before the transaction that removes the marker.
//
// Chunks of an action the batch overwrites are deleted once the new value is
// durable; ones a crash left unnamed are deleted by the next Open.
func (s *Store) Save(b replog.Batch) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("save: %w", replog.ErrClosed)
	}
	if s.opts.ReadOnly {
		return errors.New("save: store opened read-only")
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.save(b); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// posRef is a chunked action's position and chunks.
type posRef struct {
	p   paxos.Position
	ref chunkRef
}

func (s *Store) save(b replog.Batch) error {
	if err := s.checkSpace(b); err != nil {
		return err
	}
	w := s.newWriter()
	defer w.discard()
	var heads, stale []posRef
	for i := range b.Actions {
		a := &b.Actions[i]
		if b.TruncateBelow != 0 && a.Position < b.TruncateBelow {
			continue // deleted by this very batch
		}
		if old, ok := s.chunked[a.Position]; ok {
			stale = append(stale, posRef{a.Position, old})
			delete(s.chunked, a.Position)
			// An earlier action of this batch at the same position may
			// have been chunked: this one replaces it.
			heads = slices.DeleteFunc(heads, func(h posRef) bool { return h.p == a.Position })
		}
		// Badger keeps the value slice until the commit: one buffer each.
		buf := seal(replog.AppendAction(make([]byte, 0, replog.ActionSize(*a)+crcLen), *a))
		if len(buf) <= s.maxValue {
			if err := w.set(actionKey(a.Position), buf, holdsAction); err != nil {
				return fmt.Errorf("write action at position %d: %w", a.Position, err)
			}
			continue
		}
		r := chunkRef{gen: s.nextGen, length: len(buf)}
		s.nextGen++
		for off := 0; off < len(buf); off += s.maxValue {
			if err := w.set(chunkKey(a.Position, r.gen, r.count), buf[off:min(off+s.maxValue, len(buf))], holdsChunk); err != nil {
				return fmt.Errorf("write chunk %d of the action at position %d: %w", r.count, a.Position, err)
			}
			r.count++
		}
		heads = append(heads, posRef{a.Position, r})
		s.chunked[a.Position] = r
	}
	if len(heads) > 0 {
		// The chunks must be durable before a key names them: they
		// may span write-ahead logs.
		if err := w.barrier(); err != nil {
			return err
		}
		for _, h := range heads {
			if err := w.set(actionKey(h.p), encodeChunkRef(h.ref), holdsAction); err != nil {
				return fmt.Errorf("write action at position %d: %w", h.p, err)
			}
		}
	}
	if b.HardState != nil {
		if err := w.set(keyMeta, seal(replog.EncodeHardState(*b.HardState)), holdsHardState); err != nil {
			return fmt.Errorf("write hard state: %w", err)
		}
	}
	done := true
	if p := b.TruncateBelow; p != 0 {
		// The marker goes in with the hard state and before any delete, so
		// a transaction that deletes is never durable without it, unless
		// the same transaction also removes it.
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(p))
		if err := w.set(keyTruncate, v[:], holdsMarker); err != nil {
			return fmt.Errorf("truncate below %d: %w", p, err)
		}
		var err error
		if done, err = s.deleteIn(w, p); err != nil {
			return fmt.Errorf("truncate below %d: %w", p, err)
		}
		if done {
			switch err := w.txn.Delete(keyTruncate); {
			case errors.Is(err, badger.ErrTxnTooBig):
				done = false
			case err != nil:
				return fmt.Errorf("truncate below %d: %w", p, err)
			default:
				w.deleted(keyTruncate, holdsUnmark)
			}
		}
		if !done {
			// Hide the range from readers until it is gone.
			s.truncating.Store(uint64(p))
		}
		s.forgetChunksBelow(p)
	}
	if err := w.final(); err != nil {
		return err
	}
	if !done {
		// The hard state and the marker must be durable before further
		// deletes: those may land in a later write-ahead log, which a power
		// loss may keep while losing this one (R3).
		if err := w.sync(); err != nil {
			return err
		}
		if err := s.deleteBelow(b.TruncateBelow); err != nil {
			return fmt.Errorf("truncate below %d: %w", b.TruncateBelow, err)
		}
	}
	if b.Sync || w.values || len(stale) > 0 {
		// Stale chunks go only once the keys naming the new values are
		// durable.
		if err := w.sync(); err != nil {
			return err
		}
	}
	for _, st := range stale {
		for i := range st.ref.count {
			if err := w.delete(chunkKey(st.p, st.ref.gen, i), holdsChunkDelete); err != nil {
				return fmt.Errorf("delete the old chunks of position %d: %w", st.p, err)
			}
		}
	}
	return w.commit()
}

// checkSpace returns a *NoSpaceError when the file system has less free space
// than the reserve plus what b writes.
func (s *Store) checkSpace(b replog.Batch) error {
	if s.opts.FreeSpaceReserve < 0 {
		return nil
	}
	free, err := freeBytes(s.dir)
	if err != nil {
		return fmt.Errorf("check free space: %w", err)
	}
	need := uint64(s.opts.FreeSpaceReserve)
	for i := range b.Actions {
		need += uint64(replog.ActionSize(b.Actions[i]) + crcLen + actionKeyLen)
	}
	if free < need {
		return &NoSpaceError{Dir: s.dir, Free: free, Reserve: need}
	}
	return nil
}

// maxDeletesPerTxn bounds the deletes a truncation adds to one transaction.
const maxDeletesPerTxn = 4096

// deleteIn deletes, within w's open transaction, actions and chunks below p,
// up to maxDeletesPerTxn keys or as many as the transaction takes; it
// reports whether none is left.
func (s *Store) deleteIn(w *writer, p paxos.Position) (bool, error) {
	var keys [][]byte
	more := false
	err := s.db.View(func(rtx *badger.Txn) error {
		for _, r := range []struct{ prefix, end []byte }{{prefixAct, actionKey(p)}, {prefixChunk, chunkPrefix(p)}} {
			it := rtx.NewIterator(badger.IteratorOptions{Prefix: r.prefix})
			for it.Rewind(); it.Valid() && bytes.Compare(it.Item().Key(), r.end) < 0; it.Next() {
				if len(keys) == maxDeletesPerTxn {
					more = true
					break
				}
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if err := w.txn.Delete(k); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) {
				return false, nil
			}
			return false, err
		}
		w.deleted(k, holdsDelete)
	}
	return !more, nil
}

// deleteBelow deletes every action and chunk below p in transactions of at
// most maxDeletesPerTxn deletes, then clears the truncation marker, after
// syncing the deletes committed before: without the marker, positions a
// crash left undeleted would reappear.
func (s *Store) deleteBelow(p paxos.Position) error {
	w := s.newWriter()
	defer w.discard()
	for {
		done, err := s.deleteIn(w, p)
		if err != nil {
			return err
		}
		if done {
			if err := w.delete(keyTruncate, holdsUnmark); err != nil {
				return err
			}
			if err := w.final(); err != nil {
				return err
			}
			break
		}
		if err := w.commit(); err != nil {
			return err
		}
	}
	s.truncating.Store(0)
	s.forgetChunksBelow(p)
	return nil
}

// forgetChunksBelow drops the chunk records of positions below p (being
// deleted).
func (s *Store) forgetChunksBelow(p paxos.Position) {
	for q := range s.chunked {
		if q < p {
			delete(s.chunked, q)
		}
	}
}

// loadChunks records the chunked actions of the store and deletes the chunks
// no key names (left by a crash in the middle of a Save, or by one that
// overwrote a chunked action).
func (s *Store) loadChunks() error {
	var orphans [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixChunk})
		defer it.Close()
		var (
			cur   paxos.Position
			ref   chunkRef
			named bool // cur's key names chunks; ref says which
			keep  bool // cur's key is unreadable: leave its chunks alone
			first = true
		)
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			p, gen, i, ok := parseChunkKey(k)
			if !ok {
				return fmt.Errorf("%w: unexpected key %x", replog.ErrCorrupt, k)
			}
			s.nextGen = max(s.nextGen, gen+1)
			if first || p != cur {
				first, cur, named, keep = false, p, false, false
				item, err := txn.Get(actionKey(p))
				switch {
				case errors.Is(err, badger.ErrKeyNotFound):
				case err != nil:
					return err
				default:
					err = item.Value(func(v []byte) error {
						if isChunked(v) {
							ref, err = decodeChunkRef(v)
							named = err == nil
							keep = err != nil
						}
						return nil
					})
					if err != nil {
						return err
					}
				}
				if named {
					s.chunked[p] = ref
				}
			}
			if keep || named && gen == ref.gen && i < ref.count {
				continue
			}
			orphans = append(orphans, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read chunks: %w", err)
	}
	if len(orphans) == 0 || s.opts.ReadOnly {
		return nil
	}
	s.log.Info("deleting chunks no action names", "count", len(orphans))
	w := s.newWriter()
	defer w.discard()
	for _, k := range orphans {
		if err := w.delete(k, holdsChunkDelete); err != nil {
			return fmt.Errorf("delete unnamed chunks: %w", err)
		}
	}
	return w.commit()
}

// holds says what a transaction holds, for the trace hook.
type holds uint8

const (
	holdsAction      holds = 1 << iota // an action's key: the action, or its chunks' descriptor
	holdsChunk                         // chunks
	holdsHardState                     // the hard state
	holdsMarker                        // the truncation marker, set
	holdsDelete                        // deletes of actions and chunks being truncated
	holdsUnmark                        // the truncation marker, deleted
	holdsChunkDelete                   // deletes of chunks no key names any more
)

var holdsNames = []string{"action", "chunk", "hardstate", "marker", "delete", "unmark", "chunkdelete"}

func (h holds) String() string {
	var parts []string
	for i, n := range holdsNames {
		if h&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "+")
}

// writer puts a sequence of writes into Badger transactions, committing the
// open one and starting the next when Badger says it is full. A later
// transaction may go to a later write-ahead log than an earlier one (a
// memtable rotation), and after a power loss Badger may find the later log's
// pages written back and the earlier one's not: barrier and final keep the
// sequence's order durable where it matters.
type writer struct {
	s     *Store
	txn   *badger.Txn
	holds holds // what the open transaction holds
	// bytes: keys and values in the open transaction, plus overheads (see
	// logSync.afterCommit).
	bytes int64
	// spilled: a transaction was committed since the last sync.
	spilled bool
	// values: a value went to Badger's value log (only in the legacy
	// mode of tests, or for a hard state of 1 MiB), so syncs include it.
	values bool
}

func (s *Store) newWriter() *writer { return &writer{s: s, txn: s.db.NewTransaction(true)} }

func (w *writer) discard() { w.txn.Discard() }

// set writes k = v.
func (w *writer) set(k, v []byte, h holds) error {
	w.values = w.values || int64(len(v)) >= w.s.opts.valueThreshold()
	err := w.txn.Set(k, v)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err = w.commit(); err != nil {
			return err
		}
		err = w.txn.Set(k, v)
	}
	if err == nil {
		w.holds |= h
		w.bytes += int64(len(k) + len(v) + entryOverhead)
	}
	return err
}

// delete deletes k.
func (w *writer) delete(k []byte, h holds) error {
	err := w.txn.Delete(k)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err = w.commit(); err != nil {
			return err
		}
		err = w.txn.Delete(k)
	}
	if err == nil {
		w.deleted(k, h)
	}
	return err
}

// deleted notes a delete of k made in the open transaction.
func (w *writer) deleted(k []byte, h holds) {
	w.holds |= h
	w.bytes += int64(len(k) + entryOverhead)
}

// commit commits the open transaction, if it holds anything, and opens the
// next one.
func (w *writer) commit() error {
	if w.holds == 0 {
		return nil
	}
	err := w.txn.Commit()
	w.txn = w.s.db.NewTransaction(true)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if w.s.trace != nil {
		w.s.trace("commit " + w.holds.String())
	}
	n := w.bytes + commitOverhead
	w.holds, w.bytes, w.spilled = 0, 0, true
	if w.s.ls != nil {
		// The commit may have rotated the memtable: back the new
		// write-ahead log at once.
		return w.s.ls.afterCommit(n)
	}
	return nil
}

// sync makes every transaction committed so far durable.
func (w *writer) sync() error {
	if err := w.s.syncLogs(w.values); err != nil {
		return err
	}
	w.spilled = false
	return nil
}

// barrier commits the open transaction and makes it and all before it
// durable.
func (w *writer) barrier() error {
	if err := w.commit(); err != nil {
		return err
	}
	return w.sync()
}

// final commits the open transaction as the last of the sequence: when
// earlier ones were committed since the last sync it syncs them first, so
// that it never becomes durable without them.
func (w *writer) final() error {
	if w.spilled && w.holds != 0 {
		if err := w.sync(); err != nil {
			return err
		}
	}
	return w.commit()
}
