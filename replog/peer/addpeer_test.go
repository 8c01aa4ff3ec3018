package peer

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog/paxos"
)

// TestAddPeerDialsAtRuntime starts two transports that know nothing of each
// other, then adds each to the other at runtime: both directions come up and
// carry messages, adding again changes nothing, and a closed transport
// refuses.
func TestAddPeerDialsAtRuntime(t *testing.T) {
	t.Parallel()
	la, lb := listen(t), listen(t)
	a := startNode(t, 1, 1, la, nil)
	b := startNode(t, 2, 1, lb, nil)
	if got := len(a.tr.Peers()); got != 0 {
		t.Fatalf("Peers() before AddPeer has %d entries, want 0", got)
	}
	for _, x := range []struct{ n, to *node }{{a, b}, {b, a}, {a, b}} {
		if err := x.n.tr.AddPeer(x.to.addr); err != nil {
			t.Fatalf("AddPeer(%s): %v", x.to.addr, err)
		}
	}
	if got := len(a.tr.Peers()); got != 1 {
		t.Errorf("Peers() after adding the same address twice has %d entries, want 1", got)
	}
	waitConnected(t, []*node{a, b})
	a.tr.Send([]paxos.Message{msg(1, 2, 7)})
	if diff := cmp.Diff([]paxos.Message{msg(1, 2, 7)}, b.recv(t, 1)); diff != "" {
		t.Errorf("b received (-want +got):\n%s", diff)
	}
	b.tr.Send([]paxos.Message{msg(2, 0, 8)})
	if diff := cmp.Diff([]paxos.Message{msg(2, 0, 8)}, a.recv(t, 1)); diff != "" {
		t.Errorf("a received (-want +got):\n%s", diff)
	}
	a.close(t)
	if err := a.tr.AddPeer("127.0.0.1:1"); err == nil {
		t.Error("AddPeer after Close succeeded, want an error")
	}
	if err := b.tr.AddPeer(""); err == nil {
		t.Error("AddPeer(\"\") succeeded, want an error")
	}
}

// TestPeersReportRefusal checks that a refused dialer sees the listener's
// reason in Peers until the stream comes up.
func TestPeersReportRefusal(t *testing.T) {
	t.Parallel()
	lb := listen(t)
	var refuse atomic.Bool
	refuse.Store(true)
	b := startNode(t, 2, 1, lb, nil, func(c *Config) {
		c.Allow = func(paxos.ClusterID, paxos.ReplicaID, string) error {
			if refuse.Load() {
				return errNotMember
			}
			return nil
		}
	})
	a := startNode(t, 1, 1, listen(t), []string{b.addr})
	waitFor(t, a.tr, "a refusal", func() bool { return a.tr.Peers()[0].Refusal != "" })
	if got := a.tr.Peers()[0].Refusal; !strings.HasPrefix(got, "refused by peer: ") || !strings.Contains(got, errNotMember.Error()) {
		t.Errorf("Refusal = %q, want the listener's reason", got)
	}
	refuse.Store(false)
	waitFor(t, a.tr, "the stream", func() bool { return a.tr.Peers()[0].Connected })
	if got := a.tr.Peers()[0].Refusal; got != "" {
		t.Errorf("Refusal once connected = %q, want none", got)
	}
}
