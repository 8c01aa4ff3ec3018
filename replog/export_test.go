package replog

import (
	"context"
	"time"
)

// StallForTest blocks the driver goroutine for d, as a slow Save or a long
// GC pause would.
func (n *Node) StallForTest(ctx context.Context, d time.Duration) error {
	return n.do(ctx, "stall", func() { time.Sleep(d) })
}

// SetAfterEarlyPublishForTest makes the driver call f after it published a
// batch of learned marks early and before it saves that batch. Call it
// before Run.
func (n *Node) SetAfterEarlyPublishForTest(f func()) { n.testAfterEarlyPublish = f }

// SetOnStatusForTest makes the driver call f with every status it
// publishes, from the driver goroutine.
func (n *Node) SetOnStatusForTest(f func(Status)) { n.testOnStatus.Store(&f) }
