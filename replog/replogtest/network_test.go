package replogtest

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

type inbox struct {
	mu   sync.Mutex
	msgs []paxos.Message
}

func (b *inbox) handle(m paxos.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
}

func (b *inbox) types() []paxos.MessageType {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []paxos.MessageType
	for _, m := range b.msgs {
		out = append(out, m.Type)
	}
	return out
}

func TestNetworkRoutesAndPartitions(t *testing.T) {
	t.Parallel()
	n := NewNetwork(1)
	n.Record(true)
	boxes := map[paxos.ReplicaID]*inbox{1: {}, 2: {}, 3: {}}
	tr := map[paxos.ReplicaID]*Transport{}
	for id, b := range boxes {
		tr[id] = n.Join(addrOf(id), func() paxos.ReplicaID { return id }, b.handle)
	}
	tr[1].Send([]paxos.Message{{Type: paxos.MsgHeartbeat, From: 1}})           // broadcast
	tr[1].Send([]paxos.Message{{Type: paxos.MsgWriteRequest, From: 1, To: 3}}) // direct
	n.Partition([]string{addrOf(1)})
	tr[1].Send([]paxos.Message{{Type: paxos.MsgLearned, From: 1}})
	tr[2].Send([]paxos.Message{{Type: paxos.MsgLearned, From: 2, To: 3}})
	n.Heal()
	tr[3].Close()
	tr[1].Send([]paxos.Message{{Type: paxos.MsgRecoverRequest, From: 1}})

	want := map[paxos.ReplicaID][]paxos.MessageType{
		1: nil,
		2: {paxos.MsgHeartbeat, paxos.MsgRecoverRequest},
		3: {paxos.MsgHeartbeat, paxos.MsgWriteRequest, paxos.MsgLearned},
	}
	for id, b := range boxes {
		if diff := cmp.Diff(want[id], b.types()); diff != "" {
			t.Errorf("replica %d received (-want +got):\n%s", id, diff)
		}
	}
	if got := len(n.Sends()); got != 5 {
		t.Errorf("recorded %d sends, want 5", got)
	}
	peers := tr[1].Peers()
	wantPeers := []replog.Peer{{ID: 2, Addr: addrOf(2), Connected: true}, {ID: 3, Addr: addrOf(3)}}
	if diff := cmp.Diff(wantPeers, peers); diff != "" {
		t.Errorf("Peers (-want +got):\n%s", diff)
	}
}

func TestNetworkDeliversCopies(t *testing.T) {
	t.Parallel()
	n := NewNetwork(1)
	var b inbox
	tr := n.Join("a", func() paxos.ReplicaID { return 1 }, func(paxos.Message) {})
	n.Join("b", func() paxos.ReplicaID { return 2 }, b.handle)
	m := paxos.Message{Type: paxos.MsgWriteRequest, Actions: []paxos.Action{{Position: 1, Entry: paxos.Entry{Data: []byte("x")}}}}
	tr.Send([]paxos.Message{m})
	m.Actions[0].Entry.Data[0] = 'y'
	if got := string(b.msgs[0].Actions[0].Entry.Data); got != "x" {
		t.Errorf("delivered data = %q after the sender scribbled on it, want %q", got, "x")
	}
}

func TestNetworkDropRate(t *testing.T) {
	t.Parallel()
	n := NewNetwork(7)
	var b inbox
	tr := n.Join("a", func() paxos.ReplicaID { return 1 }, func(paxos.Message) {})
	n.Join("b", func() paxos.ReplicaID { return 2 }, b.handle)
	n.SetDropRate(0.5)
	for range 1000 {
		tr.Send([]paxos.Message{{Type: paxos.MsgHeartbeat}})
	}
	delivered, dropped := n.Stats()
	if delivered+dropped != 1000 || delivered < 400 || delivered > 600 {
		t.Errorf("delivered %d, dropped %d of 1000 at rate 0.5", delivered, dropped)
	}
	if got := uint64(len(b.types())); got != delivered {
		t.Errorf("handler saw %d messages, network says %d delivered", got, delivered)
	}
}

func addrOf(id paxos.ReplicaID) string {
	return string(rune('a'+id-1)) + ":5051"
}
