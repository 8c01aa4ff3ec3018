package peer

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// recorder is a replog.Transport that records what it is asked to send.
type recorder struct {
	mu     sync.Mutex
	sent   []paxos.Message
	peers  []replog.Peer
	closed bool
}

func (r *recorder) Send(msgs []paxos.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, msgs...)
}

func (r *recorder) Peers() []replog.Peer { return slices.Clone(r.peers) }

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recorder) got() []paxos.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

func positions(ms []paxos.Message) []paxos.Position {
	var ps []paxos.Position
	for _, m := range ms {
		ps = append(ps, m.Position)
	}
	return ps
}

// run sends n messages one by one through faults seeded with seed.
func runFaults(seed uint64, n int, set func(*Faults)) ([]paxos.Message, FaultCounts) {
	r := &recorder{}
	f := NewFaults(seed).Wrap(r)
	set(f)
	for i := range n {
		f.Send([]paxos.Message{msg(1, 2, paxos.Position(i))})
	}
	return r.got(), f.Counts()
}

func TestFaultsSameSeedSameFaults(t *testing.T) {
	t.Parallel()
	set := func(f *Faults) {
		f.SetDrop(0.3)
		f.SetDuplicate(0.2)
	}
	const n = 1000
	got1, counts1 := runFaults(42, n, set)
	got2, counts2 := runFaults(42, n, set)
	if diff := cmp.Diff(positions(got1), positions(got2)); diff != "" {
		t.Errorf("same seed, different deliveries (-first +second):\n%s", diff)
	}
	if counts1 != counts2 {
		t.Errorf("same seed, counts %+v and %+v", counts1, counts2)
	}
	if got, want := len(got1), n-counts1.Dropped+counts1.Duplicated; got != want {
		t.Errorf("delivered %d, want %d - %d dropped + %d duplicated = %d", got, n, counts1.Dropped, counts1.Duplicated, want)
	}
	// The rates are near what was asked (binomial, n = 1000: far outside
	// 5 standard deviations would mean a broken draw).
	if counts1.Dropped < 230 || counts1.Dropped > 370 {
		t.Errorf("dropped %d of %d at p = 0.3", counts1.Dropped, n)
	}
	other, _ := runFaults(43, n, set)
	if slices.Equal(positions(got1), positions(other)) {
		t.Errorf("seeds 42 and 43 gave the same deliveries")
	}
}

func TestFaultsNoneSetPassesThrough(t *testing.T) {
	t.Parallel()
	r := &recorder{peers: []replog.Peer{{ID: 2, Connected: true}}}
	f := NewFaults(1).Wrap(r)
	in := []paxos.Message{msg(1, 0, 1), msg(1, 3, 2)}
	f.Send(in)
	if diff := cmp.Diff(in, r.got()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

func TestFaultsBlockTo(t *testing.T) {
	t.Parallel()
	r := &recorder{peers: []replog.Peer{
		{ID: 4, Addr: "d", Connected: true},
		{ID: 2, Addr: "b", Connected: true},
		{ID: 3, Addr: "c", Connected: true},
		{ID: 5, Addr: "e", Connected: false}, // not connected: a broadcast skips it
		{ID: 0, Addr: "f", Connected: false}, // never handshaken
	}}
	f := NewFaults(1).Wrap(r)
	f.BlockTo(3)
	f.Send([]paxos.Message{msg(1, 0, 1), msg(1, 3, 2), msg(1, 2, 3)})
	want := []paxos.Message{msg(1, 2, 1), msg(1, 4, 1), msg(1, 2, 3)}
	if diff := cmp.Diff(want, r.got()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	if got := f.Counts().BlockedTo; got != 2 {
		t.Errorf("BlockedTo = %d, want 2", got)
	}
	f.Heal()
	f.Send([]paxos.Message{msg(1, 3, 4)})
	if got := r.got(); got[len(got)-1].Position != 4 {
		t.Errorf("after Heal, last sent %+v, want position 4", got[len(got)-1])
	}
}

func TestFaultsInbound(t *testing.T) {
	t.Parallel()
	f := NewFaults(1)
	var got []paxos.Position
	h := f.Inbound(func(m paxos.Message) { got = append(got, m.Position) })
	f.Partition(5)
	h(msg(5, 1, 1))
	h(msg(6, 1, 2))
	f.Heal()
	h(msg(5, 1, 3))
	if diff := cmp.Diff([]paxos.Position{2, 3}, got); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	if got := f.Counts().BlockedIn; got != 1 {
		t.Errorf("BlockedIn = %d, want 1", got)
	}
}

func TestFaultsDelay(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		f := NewFaults(7).Wrap(r)
		f.SetDelay(10*time.Millisecond, 30*time.Millisecond)
		sent := make([]paxos.Message, 0, 20)
		for i := range 20 {
			sent = append(sent, msg(1, 2, paxos.Position(i)))
		}
		f.Send(sent)
		// Send must not retain the caller's slices: scribble over them.
		for i := range sent {
			sent[i].Actions[0].Entry.Data[0] = 'X'
		}
		synctest.Wait()
		if got := r.got(); len(got) != 0 {
			t.Fatalf("delivered %d messages before the shortest delay", len(got))
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		early := len(r.got())
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		got := r.got()
		if len(got) != 20 || early == 20 {
			t.Fatalf("delivered %d at 10ms and %d at 30ms, want some later than 10ms and all 20 by 30ms", early, len(got))
		}
		for _, m := range got {
			if string(m.Actions[0].Entry.Data) != "registry update" {
				t.Errorf("delayed message changed by the caller after Send: %q", m.Actions[0].Entry.Data)
			}
		}
		if slices.IsSortedFunc(got, func(a, b paxos.Message) int { return int(a.Position) - int(b.Position) }) {
			t.Errorf("random delays in [10ms, 30ms] kept 20 messages in order: %v", positions(got))
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if !r.closed {
			t.Errorf("Close did not close the wrapped transport")
		}
	})
}

func TestFaultsCloseDropsDelayed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		f := NewFaults(7).Wrap(r)
		f.SetDelay(time.Second, time.Second)
		f.Send([]paxos.Message{msg(1, 2, 1)})
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f.Send([]paxos.Message{msg(1, 2, 2)})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := r.got(); len(got) != 0 {
			t.Errorf("delivered %v after Close", positions(got))
		}
	})
}

// TestFaultsPartitionOnLoopback partitions one of three real transports.
// Messages on one stream arrive in order, so a message sent after healing
// that arrives first proves the one sent during the partition was dropped.
func TestFaultsPartitionOnLoopback(t *testing.T) {
	t.Parallel()
	ids := []paxos.ReplicaID{1, 2, 3}
	faults := make([]*Faults, len(ids))
	for i := range faults {
		faults[i] = NewFaults(uint64(i))
	}
	// arrived sees every message reaching a transport once the inbound
	// filter has passed or blocked it, so the test knows when a blocked one
	// came and went (signalled before the filter, the test could heal the
	// partition before the filter looked, and the message would pass).
	arrived := make([]chan paxos.Message, len(ids))
	k := 0
	nodes := startCluster(t, ids, func(c *Config) {
		filtered := faults[k].Inbound(c.Handler)
		ch := make(chan paxos.Message, 64)
		arrived[k] = ch
		c.Handler = func(m paxos.Message) {
			filtered(m)
			ch <- m
		}
		k++
	})
	for i, n := range nodes {
		faults[i].Wrap(n.tr)
	}
	waitConnected(t, nodes)
	a, b, c := nodes[0], nodes[1], nodes[2]
	fa := faults[0]

	fa.Partition(c.id)
	fa.Send([]paxos.Message{msg(1, 0, 1)})      // to b only
	c.tr.Send([]paxos.Message{msg(3, a.id, 1)}) // dropped by a's inbound filter
	b.tr.Send([]paxos.Message{msg(2, a.id, 1)}) // delivered
	if got := b.recv(t, 1); got[0].From != 1 || got[0].Position != 1 {
		t.Errorf("b received %+v, want a's broadcast", got[0])
	}
	if got := a.recv(t, 1); got[0].From != 2 {
		t.Errorf("a received %+v, want b's message", got[0])
	}
	// Wait until c's message reached a's filter.
	for deadline := time.After(waitTimeout); ; {
		var m paxos.Message
		select {
		case m = <-arrived[0]:
		case <-deadline:
			t.Fatal("c's message never reached a")
		}
		if m.From == c.id {
			break
		}
	}

	fa.Heal()
	fa.Send([]paxos.Message{msg(1, c.id, 2)})
	c.tr.Send([]paxos.Message{msg(3, a.id, 2)})
	if got := c.recv(t, 1); got[0].Position != 2 {
		t.Errorf("c first received %+v from a, want position 2 (position 1 was partitioned away)", got[0])
	}
	if got := a.recv(t, 1); got[0].From != 3 || got[0].Position != 2 {
		t.Errorf("a received %+v, want c's position 2 (position 1 was partitioned away)", got[0])
	}
	if got := fa.Counts(); got.BlockedTo != 1 || got.BlockedIn != 1 {
		t.Errorf("counts %+v, want one blocked each way", got)
	}
}
