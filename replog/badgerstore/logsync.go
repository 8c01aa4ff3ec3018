package badgerstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
//     replog.Storage requires. Each sync lists the directory for them (one
//     getdents on a descriptor kept open): what the store learns of
//     rotations otherwise (rotationSignal, a bound on bytes written) only
//     times preallocation, and a log created and flushed between two looks
//     would leave a gap in the numbers past which a probe by number stops;
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
	path string
	dir  *os.File // the directory, open to list and sync it

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
	rotation                             *rotationSignal
	sinceRotation, probeAt, memTableSize int64

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

func newLogSync(path string, memTableSize int64, rotation *rotationSignal) (*logSync, error) {
	dir, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ls := &logSync{path: path, dir: dir, files: map[string]*os.File{}, dirPending: true, walExtent: walExtent(memTableSize),
		rotation: rotation, probeAt: 2 * memTableSize, memTableSize: memTableSize}
	ls.mem = logKind{format: "%05d.mem", count: &ls.walSyncs}
	ls.vlog = logKind{format: "%06d.vlog", count: &ls.vlogSyncs}
	names, err := ls.list()
	if err != nil {
		dir.Close()
		return nil, err
	}
	for _, k := range []*logKind{&ls.mem, &ls.vlog} {
		k.from, k.top = 0, -1
		first := true
		for _, name := range names {
			fid, ok := k.parse(name)
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
// value logs too if values went there. It lists the directory for the log
// files rather than trust what it knows of them: a log created and flushed
// since the last look would leave a gap in their numbers, and the files
// after it must be synced all the same (the newest holds the latest
// commits).
func (ls *logSync) sync(values bool) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.lastSynced, ls.lastGone = ls.lastSynced[:0], ls.lastGone[:0]
	names, err := ls.list()
	if err != nil {
		return err
	}
	fresh := false
	if values {
		f, err := ls.syncKind(&ls.vlog, names)
		if err != nil {
			return err
		}
		fresh = fresh || f
	}
	f, err := ls.syncKind(&ls.mem, names)
	if err != nil {
		return err
	}
	if f {
		// A rotation the store was not told of: back the new log now, and
		// count for afterCommit the full memtables before it.
		found, err := ls.preallocateLocked(names)
		if err != nil {
			return err
		}
		ls.sinceRotation = max(0, ls.sinceRotation-int64(found)*ls.memTableSize)
	}
	if fresh || f || ls.dirPending {
		if err := ls.dir.Sync(); err != nil {
			return fmt.Errorf("sync directory %s: %w", ls.path, err)
		}
		ls.dirSyncs++
		ls.dirPending = false
	}
	return nil
}

// list returns the names in the directory, through the descriptor kept open
// for it.
func (ls *logSync) list() ([]string, error) {
	if _, err := ls.dir.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("list %s: %w", ls.path, err)
	}
	names, err := ls.dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", ls.path, err)
	}
	return names, nil
}

// fids returns the IDs of the files of kind k among names, from k.from up,
// ascending.
func (k *logKind) fids(names []string) []int {
	var out []int
	for _, n := range names {
		if fid, ok := k.parse(n); ok && fid >= k.from {
			out = append(out, fid)
		}
	}
	slices.Sort(out)
	return out
}

// syncKind syncs the files of k listed in names from k.from to the newest
// and reports whether it found files it did not know (whose names must be
// made durable by syncing the directory).
func (ls *logSync) syncKind(k *logKind, names []string) (fresh bool, err error) {
	fids := k.fids(names)
	for fid := k.from; fid <= k.top; fid++ {
		if _, ok := slices.BinarySearch(fids, fid); !ok {
			ls.lastGone = append(ls.lastGone, fmt.Sprintf(k.format, fid))
		}
	}
	for _, fid := range fids {
		name := fmt.Sprintf(k.format, fid)
		ok, err := ls.syncFile(name)
		if err != nil {
			return false, err
		}
		if !ok {
			ls.lastGone = append(ls.lastGone, name) // flushed since the listing
			continue
		}
		*k.count++
		ls.lastSynced = append(ls.lastSynced, name)
		if fid > k.top {
			k.top, fresh = fid, true
		}
	}
	for name, f := range ls.files {
		if fid, ok := k.parse(name); ok && fid < k.top {
			f.Close()
			delete(ls.files, name)
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
		f, err = os.Open(filepath.Join(ls.path, name))
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
// log to preallocate only after one, not with a system call per commit.
// Durability does not depend on it: sync lists the directory.
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
// Open). A rotation found that way may have come several commits earlier,
// so the count since it is lowered only by the full memtables before it.
func (ls *logSync) afterCommit(n int64) error {
	told := ls.rotation != nil && ls.rotation.pending.Swap(false)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.sinceRotation += n
	if !told && ls.sinceRotation < ls.probeAt {
		return nil
	}
	names, err := ls.list()
	if err != nil {
		return err
	}
	found, err := ls.preallocateLocked(names)
	switch {
	case err != nil:
		return err
	case found == 0:
	case told:
		ls.sinceRotation = n // the rotation came before this commit
	default:
		// Found late: the newest memtable may hold all the store wrote
		// since the last rotation it saw but for the full memtables
		// before it.
		ls.sinceRotation = max(n, ls.sinceRotation-int64(found)*ls.memTableSize)
	}
	return nil
}

// preallocateWALs allocates the blocks of every write-ahead log it has not
// seen yet, as far as Badger may write into it (walExtent), so that no write
// Badger makes to one through its mapping can fault for lack of space
// (Badger creates them sparse, with ftruncate). Open calls it for the logs
// that exist; afterCommit, and a sync that finds a new log, for new ones.
// ENOSPC is a *NoSpaceError.
func (ls *logSync) preallocateWALs() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	names, err := ls.list()
	if err != nil {
		return err
	}
	_, err = ls.preallocateLocked(names)
	return err
}

// preallocateLocked preallocates the write-ahead logs among names above the
// last one it preallocated and returns how many it found.
func (ls *logSync) preallocateLocked(names []string) (int, error) {
	var fids []int
	for _, n := range names {
		if fid, ok := ls.mem.parse(n); ok && fid > ls.allocated {
			fids = append(fids, fid)
		}
	}
	found := len(fids)
	slices.Sort(fids)
	for _, fid := range fids {
		name := fmt.Sprintf(ls.mem.format, fid)
		f, err := os.OpenFile(filepath.Join(ls.path, name), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			ls.allocated = fid // flushed and deleted already
			continue
		}
		if err != nil {
			return found, fmt.Errorf("preallocate %s: %w", name, err)
		}
		err = preallocate(f, ls.walExtent)
		f.Close()
		if errors.Is(err, syscall.ENOSPC) {
			free, _ := freeBytes(ls.path)
			return found, &NoSpaceError{Dir: ls.path, Free: free, Err: fmt.Errorf("preallocate %s: %w", name, err)}
		}
		if err != nil {
			return found, fmt.Errorf("preallocate %s: %w", name, err)
		}
		ls.allocated = fid
		if fid > ls.mem.top {
			// The next sync syncs it, and the directory for its name.
			ls.mem.top, ls.dirPending = fid, true
		}
	}
	return found, nil
}

// close releases the descriptors.
func (ls *logSync) close() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for name, f := range ls.files {
		f.Close()
		delete(ls.files, name)
	}
	ls.dir.Close()
}
