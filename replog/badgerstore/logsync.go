package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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

	mu       sync.Mutex // Save and value-log GC both sync
	files    map[string]*os.File
	known    map[string]bool // log files seen at the last sync
	memFrom  int             // .mem files below it hold nothing unsynced
	vlogFrom int             // .vlog files below it hold nothing unsynced

	// For tests: files synced, by kind, since Open; the names the last sync
	// synced, and those it found deleted (flushed) meanwhile.
	walSyncs, vlogSyncs, dirSyncs int
	lastSynced, lastGone          []string
}

func newLogSync(dir string) *logSync {
	return &logSync{dir: dir, files: map[string]*os.File{}, known: map[string]bool{}}
}

// logFile is one of Badger's log files.
type logFile struct {
	name string
	fid  int
}

// listLogs returns Badger's write-ahead log and value-log files, each
// ascending by file ID.
func (ls *logSync) listLogs() (mem, vlog []logFile, err error) {
	entries, err := os.ReadDir(ls.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", ls.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		for _, ext := range []string{".mem", ".vlog"} {
			base, ok := strings.CutSuffix(name, ext)
			if !ok {
				continue
			}
			fid, err := strconv.Atoi(base)
			if err != nil {
				continue
			}
			if ext == ".mem" {
				mem = append(mem, logFile{name, fid})
			} else {
				vlog = append(vlog, logFile{name, fid})
			}
		}
	}
	byFid := func(a, b logFile) int { return a.fid - b.fid }
	slices.SortFunc(mem, byFid)
	slices.SortFunc(vlog, byFid)
	return mem, vlog, nil
}

// sync makes every commit so far durable: the write-ahead logs always, the
// value logs too if values went there.
func (ls *logSync) sync(values bool) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	mem, vlog, err := ls.listLogs()
	if err != nil {
		return err
	}
	ls.lastSynced, ls.lastGone = ls.lastSynced[:0], ls.lastGone[:0]
	syncFrom := func(files []logFile, from int, count *int) error {
		for _, f := range files {
			if f.fid < from {
				continue
			}
			ok, err := ls.syncFile(f.name)
			if err != nil {
				return err
			}
			if ok {
				*count++
				ls.lastSynced = append(ls.lastSynced, f.name)
			} else {
				ls.lastGone = append(ls.lastGone, f.name)
			}
		}
		return nil
	}
	if values {
		if err := syncFrom(vlog, ls.vlogFrom, &ls.vlogSyncs); err != nil {
			return err
		}
		if n := len(vlog); n > 0 {
			ls.vlogFrom = vlog[n-1].fid
		}
	}
	if err := syncFrom(mem, ls.memFrom, &ls.walSyncs); err != nil {
		return err
	}
	if n := len(mem); n > 0 {
		ls.memFrom = mem[n-1].fid
	}
	seen := make(map[string]bool, len(mem)+len(vlog))
	fresh := false
	for _, f := range slices.Concat(mem, vlog) {
		seen[f.name] = true
		fresh = fresh || !ls.known[f.name]
	}
	if fresh {
		if err := syncDir(ls.dir); err != nil {
			return err
		}
		ls.dirSyncs++
	}
	ls.known = seen
	for name, f := range ls.files {
		if !seen[name] {
			f.Close()
			delete(ls.files, name)
		}
	}
	return nil
}

// syncFile fdatasyncs one log file, opening it once, and reports whether it
// still existed. A write-ahead log Badger deleted meanwhile was flushed into
// a synced table; a value log, rewritten by GC once its values were synced.
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
