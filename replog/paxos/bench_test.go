package paxos

import (
	"testing"
)

// BenchmarkCommit measures the core's cost per learned entry in a 3-replica
// cluster over the in-memory network (no IO): the coordinator keeps the
// window full, batches of b.N appends of 100 bytes each.
func BenchmarkCommit(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(map[int]string{1: "entries=1", 16: "entries=16"}[batch], func(b *testing.B) {
			cl := newCluster(Config{Quorum: 2, AutoInitialize: true, HeartbeatTicks: 1, LeaseTicks: 10, RetryTicks: 5, Window: 64, MaxBatchBytes: 64 << 10},
				func(format string, args ...any) { b.Fatalf(format, args...) })
			for id := ReplicaID(1); id <= 3; id++ {
				cl.add(id)
			}
			for range 10 {
				cl.tick()
				cl.stabilize()
			}
			cl.noCheck = true
			l := cl.nodes[1]
			if err := l.core.Campaign(); err != nil {
				b.Fatal(err)
			}
			cl.process(l)
			cl.stabilize()
			es := make([]Entry, batch)
			for i := range es {
				es[i] = Entry{Type: EntryAppend, Data: make([]byte, 100)}
			}
			b.SetBytes(int64(100 * batch))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := l.core.Propose(es); err != nil {
					b.Fatal(err)
				}
				cl.process(l)
				cl.stabilize()
			}
			b.StopTimer()
			if got := l.core.learnedTo; got < Position(b.N*batch) {
				b.Fatalf("learned to %d after %d batches", got, b.N)
			}
		})
	}
}
