//go:build linux

package badgerstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// TestSaveRefusesBelowReserve (A2): with less free space than the reserve,
// Save writes nothing and returns a *NoSpaceError that names the directory,
// its free space and the reserve, and matches ENOSPC.
func TestSaveRefusesBelowReserve(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	opts := testOptions(t)
	opts.FreeSpaceReserve = 1 << 62
	st := openStore(t, dir, opts)
	defer st.Close()
	err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "x")}, Sync: true})
	var ns *badgerstore.NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) || ns.Dir != dir {
		t.Fatalf("Save with a reserve of 4 EiB = %v, want a *NoSpaceError for %s matching ENOSPC", err, dir)
	}
	if msg := err.Error(); !strings.Contains(msg, "work_dir "+dir+": ") || !strings.Contains(msg, "MiB free, below the reserve of 4398046511104 MiB") {
		t.Errorf("error %q does not name the directory, its free space and the reserve", msg)
	}
	if _, ok, err := st.Action(1); ok || err != nil {
		t.Errorf("Action(1) after the refused Save = %t, %v; want absent", ok, err)
	}
}

// TestWALsArePreallocated (A2): every write-ahead log has its blocks
// allocated as far as Badger may write into it, so a write through its
// mapping cannot fault, and Badger never writes beyond that, even with
// transactions of the tiniest entries (the most log bytes per byte counted).
func TestWALsArePreallocated(t *testing.T) {
	t.Parallel()
	const mt = 1 << 20
	dir := filepath.Join(t.TempDir(), "replicated_log")
	st := openStore(t, dir, badgerstore.Options{MemTableSize: mt, GCInterval: -1})
	defer st.Close()
	extent := badgerstore.WALExtent(mt)
	check := func(when string) {
		t.Helper()
		for _, name := range memFiles(t, dir) {
			info, err := os.Stat(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // flushed meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Size() == 0 {
				continue // flushed: Badger truncates a log to 0 before removing it
			}
			// Allow a few blocks of file-system metadata.
			if got := badgerstore.Allocated(info); got < extent&^4095 || got > extent+64<<10 {
				t.Errorf("%s: %s has %d bytes allocated, want %d (the preallocated extent)", when, name, got, extent)
			}
		}
	}
	check("after Open")
	first := memFiles(t, dir)
	pos := paxos.Position(0)
	for rotations := 0; rotations < 3; {
		// As many tiny actions as one transaction takes.
		var as []paxos.Action
		for range 1200 {
			as = append(as, paxos.Action{Position: pos})
			pos++
		}
		if err := st.Save(replog.Batch{Actions: as}); err != nil {
			t.Fatal(err)
		}
		if now := memFiles(t, dir); now[len(now)-1] != first[len(first)-1] {
			rotations++
			first = now
			check("after a rotation")
		}
		if pos > 1<<20 {
			t.Fatalf("no third memtable rotation after %d actions", pos)
		}
	}
	// The store looks for a new log when Badger's log tells of a
	// rotation; should the message change, it would only look late.
	if n := st.RotationsSeen(); n < 3 {
		t.Errorf("Badger's log told of %d memtable rotations, want 3 or more", n)
	}
}

// TestSaveOnFullDisk (A2): a store on a small tmpfs that another file fills
// refuses Save with a *NoSpaceError, and the process lives on (Badger writes
// through memory-mapped files, where a full disk is SIGBUS); once space is
// freed, it saves again; closed on a full disk, it does not crash either.
// Needs root, for the mount.
func TestSaveOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	t.Parallel()
	mnt := t.TempDir()
	if err := syscall.Mount("badgerstore-test", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=32m,mode=0700"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	dir := filepath.Join(mnt, "replicated_log")
	opts := badgerstore.Options{MemTableSize: 1 << 20, GCInterval: -1}
	st := openStore(t, dir, opts)
	defer st.Close()
	pos := paxos.Position(0)
	save := func() error {
		err := st.Save(replog.Batch{Actions: actionsOf(pos, pos+64, 1000, byte(pos)), Sync: true})
		if err == nil {
			pos += 64
		}
		return err
	}
	for range 10 {
		if err := save(); err != nil {
			t.Fatal(err)
		}
	}
	fill := filepath.Join(mnt, "fill")
	if err := fillDisk(fill); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: %v, want ENOSPC", fill, err)
	}
	// Keep saving until the store refuses: the memtable is preallocated,
	// so saves may go on until its rotation would need space.
	var err error
	for i := 0; err == nil; i++ {
		if i == 1000 {
			t.Fatalf("1000 saves of 64 KB on a full disk succeeded")
		}
		err = save()
	}
	var ns *badgerstore.NoSpaceError
	if !errors.As(err, &ns) {
		t.Fatalf("Save on a full disk = %v, want a *NoSpaceError", err)
	}
	t.Logf("refused after position %d: %v", pos, err)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	for range 40 { // several memtables' worth
		if err := save(); err != nil {
			t.Fatalf("Save after space was freed: %v", err)
		}
	}
	as, err := st.Actions(0, pos, 0)
	if err != nil || len(as) != int(pos) {
		t.Fatalf("Actions after the full disk = %d actions, %v; want %d", len(as), err, pos)
	}

	// Close on a full disk leaves Badger open rather than let it flush
	// the memtable into a table through a mapping (SIGBUS); the logs are
	// synced, so another process opening the store replays them, as after
	// a kill (TestKilledWriterLosesNothingAcknowledged).
	if err := fillDisk(fill); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: %v, want ENOSPC", fill, err)
	}
	if err := st.Close(); !errors.As(err, &ns) {
		t.Errorf("Close on a full disk = %v, want a *NoSpaceError", err)
	}
	// Badger's own goroutines live on in this process: give them room.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
}

// fillDisk writes to path until the file system is full.
func fillDisk(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
}
