package appliance

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// truncateLoop keeps the log short on the coordinator n as a master does
// (master.Config.SnapshotEntries): each time every positions were learned
// since the last truncation, it appends a snapshot entry of size bytes and
// truncates the log below it. Without it, "regent log bench" grows the log
// for its whole run, and with it the stores and the mapped files a replica
// keeps resident, which a master's log does not. It polls the learned
// watermark every 10 ms until ctx ends, and returns the truncations done
// and the first error other than ctx's.
func truncateLoop(ctx context.Context, n *replog.Node, every, size int) (int, error) {
	snapshot := make([]byte, size)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	done := 0
	last := n.Status().LearnedTo
	for {
		select {
		case <-ctx.Done():
			return done, nil
		case <-t.C:
		}
		if n.Status().LearnedTo < last+paxos.Position(every) {
			continue
		}
		at, err := n.AppendSnapshot(ctx, snapshot)
		if err == nil {
			err = n.Truncate(ctx, at)
		}
		if ctx.Err() != nil {
			return done, nil
		}
		if err != nil {
			return done, fmt.Errorf("truncate the log: %w", err)
		}
		done++
		last = at
	}
}

// loadWithTruncation runs appendLoad on n and, if every > 0, truncateLoop
// beside it until the appenders are done.
func loadWithTruncation(ctx context.Context, n *replog.Node, size, writers int, d time.Duration, count, every int, stages *stageClock) (lats []time.Duration, errs int, elapsed time.Duration, truncations int, err error) {
	if every <= 0 {
		lats, errs, elapsed = appendLoad(ctx, n, size, writers, d, count, stages)
		return lats, errs, elapsed, 0, nil
	}
	tctx, cancel := context.WithCancel(ctx)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		k, err := truncateLoop(tctx, n, every, size)
		res <- result{k, err}
	}()
	lats, errs, elapsed = appendLoad(ctx, n, size, writers, d, count, stages)
	cancel()
	r := <-res
	return lats, errs, elapsed, r.n, r.err
}
