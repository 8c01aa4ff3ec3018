package badgerstore_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

var measureRSS = flag.Bool("badgerstore.rss", false, "measure the memory of an idle store (run alone: go test -run TestIdleMemory -badgerstore.rss)")

// TestIdleMemory reports the resident memory of a process holding one store
// after 20,000 positions of 256 bytes were written and the store went idle.
func TestIdleMemory(t *testing.T) {
	if !*measureRSS {
		t.Skip("measurement; enable with -badgerstore.rss")
	}
	before := rss(t)
	st, err := badgerstore.Open(filepath.Join(t.TempDir(), "replicated_log"), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	afterOpen := rss(t)
	data := bytes.Repeat([]byte{'x'}, 256)
	for p := paxos.Position(0); p < 20000; p += 64 {
		var as []paxos.Action
		for q := p; q < p+64; q++ {
			as = append(as, paxos.Action{Position: q, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: data}})
		}
		if err := st.Save(replog.Batch{Actions: as, Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Save(replog.Batch{TruncateBelow: 19900, Sync: true}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u, err := st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VmRSS: before open %s, after open %s, after 20000 writes %s; Go heap in use %d KiB; disk allocated %d KiB, apparent %d KiB",
		before, afterOpen, rss(t), ms.HeapInuse>>10, u.Allocated>>10, u.Apparent>>10)
}

func rss(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "unknown"
}
