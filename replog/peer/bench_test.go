package peer

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// BenchmarkRoundTrip measures one round trip of a batch of small messages
// between two transports on loopback: a sends the batch to b, b's handler
// echoes each message back, and the op ends when a has every echo. It
// reports p50/p99 per round trip, messages/s (both directions) and encoded
// bytes/s.
//
//	go test -run '^$' -bench RoundTrip -benchtime 20000x ./replog/peer
func BenchmarkRoundTrip(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var echo atomic.Pointer[Transport]
			var replies atomic.Int64
			done := make(chan struct{}, 1)
			want := int64(batch)
			lisA, lisB := listen(b), listen(b)
			a := startNode(b, 1, 1, lisA, []string{lisB.Addr().String()}, func(c *Config) {
				c.Handler = func(paxos.Message) {
					if replies.Add(1) == want {
						done <- struct{}{}
					}
				}
			})
			bn := startNode(b, 2, 1, lisB, []string{lisA.Addr().String()}, func(c *Config) {
				c.Handler = func(m paxos.Message) {
					m.From, m.To = m.To, m.From
					echo.Load().Send([]paxos.Message{m})
				}
			})
			echo.Store(bn.tr)
			waitConnected(b, []*node{a, bn})

			msgs := make([]paxos.Message, batch)
			for i := range msgs {
				msgs[i] = msg(1, 2, paxos.Position(i))
			}
			size := len(replog.EncodeMessage(msgs[0]))
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				replies.Store(0)
				t0 := time.Now()
				a.tr.Send(msgs)
				<-done
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(2*batch*b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(2*batch*b.N*size)/elapsed.Seconds(), "B/s")
		})
	}
}

// BenchmarkQuorumRoundTrip is the transport's share of one write of the
// replicated log with three replicas: replica 1 broadcasts one small
// message, the other two echo it, and the op ends at the first echo (with
// its own vote, a quorum of two of three). Both echoes are awaited before
// the next op, so ops do not overlap.
//
//	go test -run '^$' -bench QuorumRoundTrip -benchtime 20000x ./replog/peer
func BenchmarkQuorumRoundTrip(b *testing.B) {
	var replies atomic.Int64
	quorum := make(chan struct{}, 1)
	all := make(chan struct{}, 1)
	lis := []net.Listener{listen(b), listen(b), listen(b)}
	addrs := []string{lis[0].Addr().String(), lis[1].Addr().String(), lis[2].Addr().String()}
	var echoes [3]atomic.Pointer[Transport]
	nodes := make([]*node, 3)
	for i := range nodes {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		nodes[i] = startNode(b, paxos.ReplicaID(i+1), 1, lis[i], peers, func(c *Config) {
			if i == 0 {
				c.Handler = func(paxos.Message) {
					switch replies.Add(1) {
					case 1:
						quorum <- struct{}{}
					case 2:
						all <- struct{}{}
					}
				}
				return
			}
			c.Handler = func(m paxos.Message) {
				m.From, m.To = m.To, m.From
				echoes[i].Load().Send([]paxos.Message{m})
			}
		})
		echoes[i].Store(nodes[i].tr)
	}
	waitConnected(b, nodes)

	m := []paxos.Message{msg(1, 0, 1)}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		replies.Store(0)
		t0 := time.Now()
		nodes[0].tr.Send(m)
		<-quorum
		lat = append(lat, time.Since(t0))
		<-all
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rounds/s")
}
