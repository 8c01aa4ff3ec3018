package badgerstore

import (
	"path/filepath"
	"testing"

	"github.com/dgraph-io/ristretto/v2/z"
)

// TestAllocPoolFound fails when Badger no longer keeps its table-builder
// allocator pool where the store looks for it (a Badger upgrade): the store
// would then run without draining it, and its memory under load would grow
// by up to eight tables' buffers again.
func TestAllocPoolFound(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "replicated_log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if allocPoolOf(s.db) == nil {
		t.Fatal("allocPoolOf(db) = nil: Badger's allocPool field is gone or changed type")
	}
}

// TestDrainAllocPool: draining releases every pooled allocator, so the next
// builder starts from a fresh (small) one instead of a pooled one with its
// grown buffers.
func TestDrainAllocPool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pooled int
	}{
		{"empty", 0},
		{"one", 1},
		{"full", allocPoolSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := z.NewAllocatorPool(allocPoolSize)
			defer p.Release()
			for range tt.pooled {
				a := z.NewAllocator(1<<20, "test")
				a.Allocate(1 << 20)
				p.Return(a)
			}
			drainAllocPool(p)
			// Every allocator the pool hands out now is new: 512 bytes,
			// not the 1 MiB one that was returned.
			var got []*z.Allocator
			for range allocPoolSize {
				a := p.Get(0, "test")
				got = append(got, a)
				if n := a.Allocated(); n != 512 {
					t.Errorf("after drain, Get gave an allocator of %d bytes, want a new one of 512", n)
				}
			}
			for _, a := range got {
				a.Release()
			}
		})
	}
}
