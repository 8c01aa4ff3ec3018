//go:build linux

package badgerstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
)

// openUnder lists the descriptors of this process open on dir or a file in
// it.
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("list descriptors: %v", err)
	}
	var out []string
	for _, e := range es {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
			out = append(out, target)
		}
	}
	return out
}

// TestReviewFailedOpenLeavesNothingOpen: an Open that fails after Badger
// opened (here on an unknown format marker) closes every descriptor it
// opened in the directory, so a process that retries (the appliance waits
// for space, the supervisor restarts) does not leak them.
func TestReviewFailedOpenLeavesNothingOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	st := openStore(t, dir, testOptions(t))
	if err := st.RawSet([]byte("f"), []byte("regent-replog v99")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if open := openUnder(t, dir); len(open) != 0 {
		t.Fatalf("after Close, open: %v", open)
	}
	if _, err := badgerstore.Open(dir, testOptions(t)); !errors.Is(err, replog.ErrCorrupt) {
		t.Fatalf("Open of a store of an unknown format = %v, want ErrCorrupt", err)
	}
	if open := openUnder(t, dir); len(open) != 0 {
		t.Errorf("after a failed Open, still open: %v", open)
	}
}
