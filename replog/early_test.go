package replog_test

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// gateStore holds every unsynced save of learned marks at its gate while
// armed, so a test can see what the node does before that save is done.
type gateStore struct {
	*replogtest.Storage
	armed atomic.Bool
	held  chan struct{} // receives when a save is held
	gate  chan struct{} // closed to let held saves through
}

func (s *gateStore) Save(b replog.Batch) error {
	if s.armed.Load() && !b.Sync && recordsLearning(b) {
		s.held <- struct{}{}
		<-s.gate
	}
	return s.Storage.Save(b)
}

// recordsLearning reports whether b records positions learned: learned
// actions, or, for positions whose stored actions hold the chosen values,
// a hard state alone (the learned watermark).
func recordsLearning(b replog.Batch) bool {
	if len(b.Actions) == 0 {
		return b.HardState != nil && b.HardState.LearnedTo > 0
	}
	return b.Actions[0].Learned
}

// TestNodeAnswersAppendBeforeSavingLearnedMarks: a batch of learned marks
// alone needs no sync and carries no vote, so the node answers the
// appender and publishes the entry before that batch's save, and keeps the
// entry in memory for readers until the save is done.
func TestNodeAnswersAppendBeforeSavingLearnedMarks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const addr = "10.0.0.1:5051"
		st := &gateStore{Storage: replogtest.NewStorage(), held: make(chan struct{}), gate: make(chan struct{})}
		n, err := replog.New(replog.Config{
			Logger:         hclog.NewNullLogger(),
			Addr:           addr,
			Masters:        []string{addr},
			Quorum:         1,
			AutoInitialize: true,
			Rand:           rand.New(rand.NewSource(1)),
		}, st)
		if err != nil {
			t.Fatal(err)
		}
		tr := replogtest.NewNetwork(1).Join(addr, n.ID, n.Step)
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx, tr) }()
		var release sync.Once
		open := func() { release.Do(func() { st.armed.Store(false); close(st.gate) }) }
		defer func() {
			open()
			n.Close()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}()
		for {
			if _, err := n.Elect(ctx); err == nil {
				break
			} else if !errors.Is(err, replog.ErrNotLeader) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // fake time: let the log initialise
		}

		st.armed.Store(true)
		type result struct {
			pos paxos.Position
			err error
		}
		appended := make(chan result, 1)
		go func() {
			p, err := n.Append(ctx, []byte("early"))
			appended <- result{p, err}
		}()
		<-st.held // the driver is in the save of the learned mark
		synctest.Wait()
		var r result
		select {
		case r = <-appended:
		default:
			t.Fatal("Append did not return while the learned mark's save was held")
		}
		if r.err != nil {
			t.Fatalf("Append = %v", r.err)
		}
		// Reading past the entry must not drop it while its mark is unsaved:
		// a reader behind would otherwise look for it in storage.
		if _, err := readOnce(ctx, n, r.pos+1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read past the entry = %v, want to wait", err)
		}
		es, err := readOnce(ctx, n, r.pos)
		if err != nil || len(es) == 0 || es[0].Position != r.pos || string(es[0].Data) != "early" {
			t.Fatalf("Read(%d) while the save is held = %+v, %v; want the entry", r.pos, es, err)
		}
		open()
		synctest.Wait()
		if s := n.Status(); s.LearnedTo != r.pos+1 {
			t.Errorf("LearnedTo = %d, want %d", s.LearnedTo, r.pos+1)
		}
	})
}

// readOnce reads from p, waiting at most a second (fake time).
func readOnce(ctx context.Context, n *replog.Node, p paxos.Position) ([]replog.Entry, error) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return n.Read(rctx, p)
}

// TestNodeSavesLearnedMarksWithTheNextAppends: appends that arrive while a
// batch of learned marks waits for its save are proposed at once and saved
// in the same batch, one store commit instead of two.
func TestNodeSavesLearnedMarksWithTheNextAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const addr = "10.0.0.1:5051"
		st := replogtest.NewStorage()
		n, err := replog.New(replog.Config{
			Logger:         hclog.NewNullLogger(),
			Addr:           addr,
			Masters:        []string{addr},
			Quorum:         1,
			AutoInitialize: true,
			Rand:           rand.New(rand.NewSource(1)),
		}, st)
		if err != nil {
			t.Fatal(err)
		}
		var armed atomic.Bool
		second := make(chan error, 1)
		n.SetAfterEarlyPublishForTest(func() {
			if !armed.CompareAndSwap(true, false) {
				return
			}
			go func() {
				_, err := n.Append(ctx, []byte("second"))
				second <- err
			}()
			synctest.Wait() // the second Append waits for the driver
		})
		tr := replogtest.NewNetwork(1).Join(addr, n.ID, n.Step)
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx, tr) }()
		defer func() {
			n.Close()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}()
		for {
			if _, err := n.Elect(ctx); err == nil {
				break
			} else if !errors.Is(err, replog.ErrNotLeader) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // fake time: let the log initialise
		}
		armed.Store(true)
		first, err := n.Append(ctx, []byte("first"))
		if err != nil {
			t.Fatalf("Append(first) = %v", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("Append(second) = %v", err)
		}
		var merged, recorded bool
		for _, s := range st.Saves() {
			// The learned mark of first: a learned action, or the first
			// hard state whose learned watermark passes it.
			learnedFirst := !recorded && s.Batch.HardState != nil && s.Batch.HardState.LearnedTo > first
			var acceptSecond, others bool
			for _, a := range s.Batch.Actions {
				learnedFirst = learnedFirst || a.Position == first && a.Learned
				acceptSecond = acceptSecond || a.Position == first+1 && !a.Learned && string(a.Entry.Data) == "second"
				others = others || a.Position != first
			}
			recorded = recorded || learnedFirst
			if learnedFirst && !acceptSecond && !s.Batch.Sync && !others {
				t.Errorf("the learned mark of %d was saved alone: %+v", first, s.Batch)
			}
			if learnedFirst && acceptSecond {
				merged = true
				if !s.Batch.Sync {
					t.Errorf("the batch with the accept of %d is not synced: %+v", first+1, s.Batch)
				}
			}
		}
		if !merged {
			t.Errorf("no save holds both the learned mark of %d and the accept of %d: %+v", first, first+1, st.Saves())
		}
	})
}
