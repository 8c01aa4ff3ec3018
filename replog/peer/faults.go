package peer

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

var _ replog.Transport = (*Faults)(nil)

// Faults wraps a [replog.Transport] and injects faults for tests: it drops,
// duplicates and delays outgoing messages with given probabilities, and
// blocks traffic to and from chosen ReplicaIDs (partitions, symmetric or
// not). Its random choices come from a generator seeded at [NewFaults] and
// are drawn in Send order, so a test that sends the same messages in the same
// order sees the same faults.
//
// Outgoing faults apply per destination, so while any fault is set a
// broadcast (To == 0) is expanded into one message per connected peer that
// announced a ReplicaID, with To set to it. Incoming blocks apply to the
// handler returned by [Faults.Inbound], which the wrapped transport must be
// built with:
//
//	f := peer.NewFaults(seed)
//	tr, err := peer.New(peer.Config{Handler: f.Inbound(node.Step), ...})
//	var t replog.Transport = f.Wrap(tr)
//
// All methods are safe for concurrent use. With a delay set, one goroutine
// delivers delayed messages; Close stops it (dropping what it still holds)
// and closes the wrapped transport.
type Faults struct {
	mu        sync.Mutex
	inner     replog.Transport
	rng       *rand.Rand
	drop      float64
	dup       float64
	delayMin  time.Duration
	delayMax  time.Duration
	blockTo   map[paxos.ReplicaID]bool
	blockFrom map[paxos.ReplicaID]bool
	counts    FaultCounts

	pending  delayHeap     // delayed messages, earliest first
	seq      uint64        // tie-break for equal due times: send order
	kick     chan struct{} // size 1: pending's head changed
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
	started  bool
	closed   bool
	closeErr error
}

// FaultCounts counts what a [Faults] did to messages.
type FaultCounts struct {
	Dropped    int // outgoing, by the drop probability
	Duplicated int // outgoing, sent twice
	Delayed    int // outgoing, held back
	BlockedTo  int // outgoing, to a blocked ReplicaID
	BlockedIn  int // incoming, from a blocked ReplicaID
}

// NewFaults returns a fault injector with no faults set, whose random
// choices are seeded by seed. Call [Faults.Wrap] before sending.
func NewFaults(seed uint64) *Faults {
	return &Faults{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		blockTo:   make(map[paxos.ReplicaID]bool),
		blockFrom: make(map[paxos.ReplicaID]bool),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// Wrap sets the transport f sends through and returns f.
func (f *Faults) Wrap(inner replog.Transport) *Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inner = inner
	return f
}

// Inbound returns a handler that passes messages to h unless they come from
// a ReplicaID blocked with [Faults.BlockFrom] or [Faults.Partition].
func (f *Faults) Inbound(h func(paxos.Message)) func(paxos.Message) {
	return func(m paxos.Message) {
		f.mu.Lock()
		blocked := f.blockFrom[m.From]
		if blocked {
			f.counts.BlockedIn++
		}
		f.mu.Unlock()
		if !blocked {
			h(m)
		}
	}
}

// SetDrop makes each outgoing message dropped with probability p.
func (f *Faults) SetDrop(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = p
}

// SetDuplicate makes each outgoing message sent twice with probability p.
func (f *Faults) SetDuplicate(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dup = p
}

// SetDelay holds each outgoing message back for a duration drawn uniformly
// from [lo, hi]; messages with different delays are reordered. Zero turns
// delays off.
func (f *Faults) SetDelay(lo, hi time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delayMin, f.delayMax = lo, max(lo, hi)
}

// BlockTo drops every outgoing message to ids.
func (f *Faults) BlockTo(ids ...paxos.ReplicaID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.blockTo[id] = true
	}
}

// BlockFrom drops every incoming message from ids.
func (f *Faults) BlockFrom(ids ...paxos.ReplicaID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.blockFrom[id] = true
	}
}

// Partition blocks ids in both directions.
func (f *Faults) Partition(ids ...paxos.ReplicaID) {
	f.BlockTo(ids...)
	f.BlockFrom(ids...)
}

// Heal removes every block; probabilities and delays stay as set.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blockTo)
	clear(f.blockFrom)
}

// Counts reports what f has done so far.
func (f *Faults) Counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// active reports whether any outgoing fault is set. f.mu is held.
func (f *Faults) active() bool {
	return f.drop > 0 || f.dup > 0 || f.delayMax > 0 || len(f.blockTo) > 0
}

// Send applies the faults to msgs and passes the survivors to the wrapped
// transport; delayed messages are copied, so msgs is not retained.
func (f *Faults) Send(msgs []paxos.Message) {
	f.mu.Lock()
	if f.closed || f.inner == nil {
		f.mu.Unlock()
		return
	}
	inner := f.inner
	if !f.active() {
		f.mu.Unlock()
		inner.Send(msgs)
		return
	}
	f.mu.Unlock()
	// Peers is read without f.mu: the wrapped transport has locks of its own.
	var targets []paxos.ReplicaID
	if slices.ContainsFunc(msgs, func(m paxos.Message) bool { return m.To == 0 }) {
		for _, p := range inner.Peers() {
			if p.Connected && p.ID != 0 && !slices.Contains(targets, p.ID) {
				targets = append(targets, p.ID)
			}
		}
		slices.Sort(targets) // Peers' order is the transport's; the seeded draws must not depend on it
	}

	var now []paxos.Message
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	one := func(m paxos.Message) {
		switch {
		case f.blockTo[m.To]:
			f.counts.BlockedTo++
			return
		case f.drop > 0 && f.rng.Float64() < f.drop:
			f.counts.Dropped++
			return
		}
		n := 1
		if f.dup > 0 && f.rng.Float64() < f.dup {
			f.counts.Duplicated++
			n = 2
		}
		for range n {
			if f.delayMax > 0 {
				d := f.delayMin
				if f.delayMax > f.delayMin {
					d += time.Duration(f.rng.Int64N(int64(f.delayMax-f.delayMin) + 1))
				}
				f.counts.Delayed++
				f.delayLocked(cloneMessage(m), d)
			} else {
				now = append(now, m)
			}
		}
	}
	for _, m := range msgs {
		if m.To != 0 {
			one(m)
			continue
		}
		for _, id := range targets {
			m.To = id
			one(m)
		}
	}
	f.mu.Unlock()
	if len(now) > 0 {
		inner.Send(now)
	}
}

// delayLocked queues m for delivery after d, starting the delivery goroutine
// on first use. f.mu is held.
func (f *Faults) delayLocked(m paxos.Message, d time.Duration) {
	heap.Push(&f.pending, delayed{due: time.Now().Add(d), seq: f.seq, msg: m})
	f.seq++
	if !f.started {
		f.started = true
		f.wg.Go(f.deliver)
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// deliver sends delayed messages when they are due, until Close.
func (f *Faults) deliver() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		var due []paxos.Message
		now := time.Now()
		for f.pending.Len() > 0 && !f.pending[0].due.After(now) {
			due = append(due, heap.Pop(&f.pending).(delayed).msg)
		}
		wait := time.Hour
		if f.pending.Len() > 0 {
			wait = f.pending[0].due.Sub(now)
		}
		inner := f.inner
		f.mu.Unlock()
		if len(due) > 0 {
			inner.Send(due)
		}
		timer.Reset(wait)
		select {
		case <-f.done:
			return
		case <-f.kick:
		case <-timer.C:
		}
	}
}

// Peers reports the wrapped transport's peers.
func (f *Faults) Peers() []replog.Peer {
	f.mu.Lock()
	inner := f.inner
	f.mu.Unlock()
	if inner == nil {
		return nil
	}
	return inner.Peers()
}

// Close stops the delivery goroutine, drops the messages still delayed and
// closes the wrapped transport. Idempotent.
func (f *Faults) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return f.closeErr
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = nil
	if f.inner != nil {
		f.closeErr = f.inner.Close()
	}
	return f.closeErr
}

// delayed is one message held back until due.
type delayed struct {
	due time.Time
	seq uint64
	msg paxos.Message
}

// delayHeap orders delayed messages by due time, then send order.
type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*h = old[:len(old)-1]
	return x
}

// cloneMessage deep-copies m, so it can be kept after Send returns.
func cloneMessage(m paxos.Message) paxos.Message {
	if m.Actions != nil {
		as := make([]paxos.Action, len(m.Actions))
		for i, a := range m.Actions {
			a.Entry.Data = slices.Clone(a.Entry.Data)
			a.Entry.Config = cloneMembership(a.Entry.Config)
			as[i] = a
		}
		m.Actions = as
	}
	m.Config = cloneMembership(m.Config)
	return m
}

func cloneMembership(ms *paxos.Membership) *paxos.Membership {
	if ms == nil {
		return nil
	}
	c := *ms
	c.Members = slices.Clone(ms.Members)
	return &c
}
