package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Badger runs with SyncWrites off and the store makes its logs durable
// itself, because Badger's SyncWrites msyncs the current value-log file on
// every commit, even a commit that wrote nothing to it (vlog.write's deferred
// Sync in Badger 4.9.6): two syncs per synced Save where one is needed, and a
// sync for every Save, also one the driver says needs none (a batch of
// learned marks). logSync syncs exactly what a synced Save needs:
//
//   - every write-ahead log (.mem) file that may hold unsynced commits: the
//     active one and any a memtable rotation retired since the last sync
//     and Badger has not flushed yet (Badger does not sync a retired log on
//     rotation; once it has flushed one into a table, which it syncs
//     together with its manifest, it deletes it). Syncing those makes every
//     earlier Save durable as well, so saves become durable in order, as
//     replog.Storage requires;
//   - the value-log (.vlog) files written since the last sync, only when a
//     Save put a value of ValueThreshold bytes or more (or value-log GC
//     moved values), and before the write-ahead logs, so that a durable
//     pointer never refers to a missing value;
//   - the directory, when a log file appeared since the last sync: Badger
//     creates them without syncing the directory (ristretto's
//     OpenMmapFileUsing checks the size after truncating the file).
//
// fdatasync on a descriptor of a file Badger maps shared writes back the
// pages written through the mapping, as msync(MS_SYNC) does.
type logSync struct {
	dir string

	mu    sync.Mutex // Save and value-log GC both sync
	mem   logKind
	vlog  logKind
	files map[string]*os.File
	// dirPending: the directory has not been synced since Open (names an
	// earlier process created may not be durable), or a log file appeared
	// since the last sync.
	dirPending bool
	// allocated is the highest write-ahead log preallocated (see
	// preallocateWALs); walExtent is how much of each one to preallocate.
	allocated int
	walExtent int64
	// rotation tells of memtable rotations (see afterCommit);
	// sinceRotation bounds from above what the store wrote to the active
	// memtable since the last one it saw, and probeAt is the fallback
	// bound at which it looks for a new log even without being told.
	rotation               *rotationSignal
	sinceRotation, probeAt int64

	// For tests: files synced, by kind, since Open; the names the last sync
	// synced, and those it found deleted (flushed) meanwhile.
	walSyncs, vlogSyncs, dirSyncs int
	lastSynced, lastGone          []string
}

// logKind tracks one kind of Badger log file. Badger numbers them in
// sequence (a new memtable or value-log file takes the highest ID plus one)
// and deletes the oldest first, so the files that may hold unsynced writes
// are from..top, and a new one, if any, is top+1.
type logKind struct {
	format    string // file name from ID, as Badger names them
	from, top int    // files below from hold nothing unsynced; top is the highest known
	count     *int
}

func newLogSync(dir string, memTableSize int64, rotation *rotationSignal) (*logSync, error) {
	ls := &logSync{dir: dir, files: map[string]*os.File{}, dirPending: true, walExtent: walExtent(memTableSize),
		rotation: rotation, probeAt: 2 * memTableSize}
	ls.mem = logKind{format: "%05d.mem", count: &ls.walSyncs}
	ls.vlog = logKind{format: "%06d.vlog", count: &ls.vlogSyncs}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, k := range []*logKind{&ls.mem, &ls.vlog} {
		k.from, k.top = 0, -1
		first := true
		for _, e := range entries {
			fid, ok := k.parse(e.Name())
			if !ok {
				continue
			}
			if first || fid < k.from {
				k.from = fid
			}
			first = false
			k.top = max(k.top, fid)
		}
		if first {
			k.from = 1 // none yet: Badger starts at 1
		}
	}
	ls.allocated = ls.mem.from - 1
	return ls, nil
}

// parse returns the ID of a file of kind k named name.
func (k *logKind) parse(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, filepath.Ext(k.format))
	if !ok {
		return 0, false
	}
	fid, err := strconv.Atoi(base)
	if err != nil || fmt.Sprintf(k.format, fid) != name {
		return 0, false
	}
	return fid, true
}

// sync makes every commit so far durable: the write-ahead logs always, the
// value logs too if values went there.
func (ls *logSync) sync(values bool) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.lastSynced, ls.lastGone = ls.lastSynced[:0], ls.lastGone[:0]
	fresh := false
	if values {
		f, err := ls.syncKind(&ls.vlog)
		if err != nil {
			return err
		}
		fresh = fresh || f
	}
	f, err := ls.syncKind(&ls.mem)
	if err != nil {
		return err
	}
	if fresh || f || ls.dirPending {
		if err := syncDir(ls.dir); err != nil {
			return err
		}
		ls.dirSyncs++
		ls.dirPending = false
	}
	return nil
}

// syncKind syncs the files of k from k.from to the newest and reports
// whether it found files it did not know (whose names must be made durable
// by syncing the directory).
func (ls *logSync) syncKind(k *logKind) (fresh bool, err error) {
	for fid := k.from; ; fid++ {
		name := fmt.Sprintf(k.format, fid)
		ok, err := ls.syncFile(name)
		if err != nil {
			return false, err
		}
		if ok {
			*k.count++
			ls.lastSynced = append(ls.lastSynced, name)
			if fid > k.top {
				k.top, fresh = fid, true
			}
		} else if fid <= k.top {
			ls.lastGone = append(ls.lastGone, name)
		}
		if fid > k.top && !ok {
			break // one past the newest file
		}
	}
	for fid := k.from; fid < k.top; fid++ {
		if f := ls.files[fmt.Sprintf(k.format, fid)]; f != nil {
			f.Close()
			delete(ls.files, fmt.Sprintf(k.format, fid))
		}
	}
	k.from = max(k.from, k.top)
	return fresh, nil
}

// syncFile fdatasyncs one log file, opening it once, and reports whether it
// exists. A write-ahead log Badger deleted meanwhile was flushed into a
// synced table; a value log, rewritten by GC once its values were synced.
func (ls *logSync) syncFile(name string) (bool, error) {
	f := ls.files[name]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(ls.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("sync %s: %w", name, err)
		}
		ls.files[name] = f
	}
	if err := fdatasync(f); err != nil {
		return false, fmt.Errorf("sync %s: %w", name, err)
	}
	return true, nil
}

// walExtent bounds how far Badger writes into a write-ahead log of a
// memtable of size m (Badger 4.9.6): it writes a request (one transaction)
// only while the log is below m bytes, and a transaction holds at most
// maxBatchSize = 15% of m bytes counting each entry's key and value plus 12
// bytes, which the log encodes in at most 34 more (header, version, CRC)
// than key and value: at most 34/12 < 3 times maxBatchSize. Badger creates
// the file at 2×m.
func walExtent(m int64) int64 {
	return min(2*m, m+3*(15*m/100)+64<<10)
}

// entryOverhead bounds from above what Badger 4.9.6 adds to a key and value
// in its write-ahead log (a header of at most 22 bytes, an 8-byte version, a
// 4-byte CRC: 34) and in its memtable's arena (a skiplist node of at most 96
// bytes plus 7 of alignment, the 8-byte version, the value's meta, user meta
// and expiry: 114), either of which rotates the memtable once it has reached
// MemTableSize when a commit comes; commitOverhead, the entry that ends a
// transaction.
const (
	entryOverhead  = 120
	commitOverhead = 160
)

// rotationSignal is raised by Badger's log message of a memtable rotation
// (see badgerLogger.Debugf), so that the store looks for a new write-ahead
// log only after one, not with a system call per commit.
type rotationSignal struct {
	pending atomic.Bool
	seen    atomic.Int64 // for tests
}

func (r *rotationSignal) raise() {
	r.pending.Store(true)
	r.seen.Add(1)
}

// afterCommit is told of each commit of the store, with the bytes of keys
// and values it wrote plus overheads, and preallocates the new write-ahead
// log a memtable rotation may have created: when Badger's log said it
// rotated the memtable (it does before it creates the new log, and a commit
// is one Badger request, which rotates at most once), or, should that
// message ever not come, once the store has written twice the memtable's
// size since the last rotation it saw (Badger starts an empty memtable at
// Open).
func (ls *logSync) afterCommit(n int64) error {
	told := ls.rotation != nil && ls.rotation.pending.Swap(false)
	ls.mu.Lock()
	ls.sinceRotation += n
	probe := told || ls.sinceRotation >= ls.probeAt
	before := ls.allocated
	ls.mu.Unlock()
	if !probe {
		return nil
	}
	if err := ls.preallocateWALs(); err != nil {
		return err
	}
	ls.mu.Lock()
	if ls.allocated != before {
		ls.sinceRotation = n // this commit may be in the new log
	}
	ls.mu.Unlock()
	return nil
}

// preallocateWALs allocates the blocks of every write-ahead log it has not
// seen yet, as far as Badger may write into it (walExtent), so that no write
// Badger makes to one through its mapping can fault for lack of space
// (Badger creates them sparse, with ftruncate). Open calls it for the logs
// that exist, and the store after each commit, which may have rotated the
// memtable (at most once: one commit is one Badger request). ENOSPC is a
// *NoSpaceError.
func (ls *logSync) preallocateWALs() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for {
		fid := ls.allocated + 1
		name := fmt.Sprintf(ls.mem.format, fid)
		f, err := os.OpenFile(filepath.Join(ls.dir, name), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			if fid < ls.mem.top {
				ls.allocated = fid // flushed and deleted already
				continue
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("preallocate %s: %w", name, err)
		}
		err = preallocate(f, ls.walExtent)
		f.Close()
		if errors.Is(err, syscall.ENOSPC) {
			free, _ := freeBytes(ls.dir)
			return &NoSpaceError{Dir: ls.dir, Free: free, Err: fmt.Errorf("preallocate %s: %w", name, err)}
		}
		if err != nil {
			return fmt.Errorf("preallocate %s: %w", name, err)
		}
		ls.allocated = fid
		if fid > ls.mem.top {
			// The next sync syncs it, and the directory for its name.
			ls.mem.top, ls.dirPending = fid, true
		}
	}
}

// rescan finds log files Badger created without a commit of the store (value
// log GC writes through Badger itself), so that the next sync covers them
// even if one in between was already flushed and deleted.
func (ls *logSync) rescan() error {
	entries, err := os.ReadDir(ls.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", ls.dir, err)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, k := range []*logKind{&ls.mem, &ls.vlog} {
		for _, e := range entries {
			if fid, ok := k.parse(e.Name()); ok && fid > k.top {
				k.top, ls.dirPending = fid, true
			}
		}
	}
	return nil
}

// close releases the descriptors.
func (ls *logSync) close() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for name, f := range ls.files {
		f.Close()
		delete(ls.files, name)
	}
}

// syncDir fsyncs a directory, making the names created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
