package peer_test

import (
	"fmt"
	"net"
	"time"

	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer"
)

// Two replicas on loopback: each listens, dials the other, and hands what it
// receives to its handler (in regent, the node's Step).
func Example() {
	lis1, _ := net.Listen("tcp", "127.0.0.1:0")
	lis2, _ := net.Listen("tcp", "127.0.0.1:0")
	secret := []byte("peer_secret from the config")
	got := make(chan paxos.Message, 16)

	newReplica := func(id paxos.ReplicaID, lis net.Listener, other string, handler func(paxos.Message)) *peer.Transport {
		t, err := peer.New(peer.Config{
			Self:          func() (paxos.ClusterID, paxos.ReplicaID) { return 7, id },
			AdvertiseAddr: lis.Addr().String(),
			Peers:         []string{other},
			Handler:       handler,
			Secret:        secret,
		})
		if err != nil {
			panic(err)
		}
		go t.Serve(lis) //nolint:errcheck // returns nil after Close
		return t
	}
	r1 := newReplica(1, lis1, lis2.Addr().String(), func(paxos.Message) {})
	defer r1.Close()
	r2 := newReplica(2, lis2, lis1.Addr().String(), func(m paxos.Message) { got <- m })
	defer r2.Close()

	// Messages sent before the stream is up are dropped (Paxos retries), so
	// resend until one arrives, as a coordinator's retry would.
	retry := time.NewTicker(10 * time.Millisecond)
	defer retry.Stop()
	for {
		r1.Send([]paxos.Message{{Type: paxos.MsgHeartbeat, Cluster: 7, From: 1, To: 0}})
		select {
		case m := <-got:
			fmt.Printf("replica 2 got %v from replica %d\n", m.Type, m.From)
			fmt.Printf("replica 1 knows its peer as replica %d\n", r1.Peers()[0].ID)
			return
		case <-retry.C:
		}
	}
	// Output:
	// replica 2 got MsgHeartbeat from replica 1
	// replica 1 knows its peer as replica 2
}
