package replogtest

import (
	"math/rand"
	"slices"
	"sync"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// Network is an in-memory network of [Transport]s for cluster tests. A
// message is delivered synchronously inside Send (the receiver's handler must
// not block, as [replog.Node.Step] does not), as a deep copy made through the
// wire codec, unless a partition, the drop rate or a filter stops it.
//
// All methods are safe for concurrent use.
type Network struct {
	mu        sync.Mutex
	eps       map[string]*Transport // by address
	group     map[string]int        // partition group by address; absent = 0
	dropRate  float64
	rnd       *rand.Rand
	filter    func(from, to string, m paxos.Message) bool
	record    bool
	sends     []Send
	delivered uint64
	dropped   uint64
}

// Send is one recorded [Transport.Send] call.
type Send struct {
	Seq  uint64 // global order among every recorded call of this package
	From string // sender's address
	Msgs []paxos.Message
}

// NewNetwork returns an empty network whose drops are drawn from seed.
func NewNetwork(seed int64) *Network {
	return &Network{
		eps:   make(map[string]*Transport),
		group: make(map[string]int),
		rnd:   rand.New(rand.NewSource(seed)),
	}
}

// Join attaches a transport at addr, replacing any earlier one there (a
// restarted replica). self reports the replica's current ID (0 until it is
// known) and is used to route messages addressed to it; handler receives
// every message delivered to it.
func (n *Network) Join(addr string, self func() paxos.ReplicaID, handler func(paxos.Message)) *Transport {
	t := &Transport{net: n, addr: addr, self: self, handler: handler}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.eps[addr]; old != nil {
		old.closed = true
	}
	n.eps[addr] = t
	return t
}

// Partition splits the network: addresses in different groups cannot reach
// each other. Addresses not named form one more group with each other.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, addr := range g {
			n.group[addr] = i + 1
		}
	}
}

// Heal removes every partition.
func (n *Network) Heal() { n.Partition() }

// SetDropRate makes every delivery fail with probability p.
func (n *Network) SetDropRate(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = p
}

// SetFilter installs f (nil removes it): a delivery happens only if f returns
// true. f is called with the network's lock held and must not call it.
func (n *Network) SetFilter(f func(from, to string, m paxos.Message) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.filter = f
}

// Record turns recording of Send calls on or off.
func (n *Network) Record(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.record = on
}

// Sends returns the recorded Send calls, oldest first.
func (n *Network) Sends() []Send {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sends)
}

// Stats returns the number of deliveries made and dropped so far.
func (n *Network) Stats() (delivered, dropped uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.delivered, n.dropped
}

type delivery struct {
	to *Transport
	b  []byte
}

func (n *Network) send(from *Transport, msgs []paxos.Message) {
	var out []delivery
	n.mu.Lock()
	if from.closed {
		n.mu.Unlock()
		return
	}
	if n.record {
		c := make([]paxos.Message, len(msgs))
		for i, m := range msgs {
			c[i] = cloneMessage(m)
		}
		n.sends = append(n.sends, Send{Seq: nextSeq(), From: from.addr, Msgs: c})
	}
	for _, m := range msgs {
		var b []byte
		for _, addr := range n.sortedAddrs() {
			to := n.eps[addr]
			if to == from || to.closed {
				continue
			}
			if m.To != 0 && to.self() != m.To {
				continue
			}
			if n.group[from.addr] != n.group[to.addr] ||
				(n.dropRate > 0 && n.rnd.Float64() < n.dropRate) ||
				(n.filter != nil && !n.filter(from.addr, to.addr, m)) {
				n.dropped++
				continue
			}
			if b == nil {
				b = replog.EncodeMessage(m)
			}
			out = append(out, delivery{to: to, b: b})
			n.delivered++
		}
	}
	n.mu.Unlock()
	for _, d := range out {
		m, err := replog.DecodeMessage(d.b)
		if err != nil {
			panic("replogtest: the codec cannot decode its own encoding: " + err.Error())
		}
		d.to.deliver(m)
	}
}

// sortedAddrs keeps deliveries (and so drop draws) in a deterministic order.
func (n *Network) sortedAddrs() []string {
	addrs := make([]string, 0, len(n.eps))
	for a := range n.eps {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	return addrs
}

// Transport is one replica's attachment to a [Network]. It implements
// [replog.Transport].
type Transport struct {
	net     *Network
	addr    string
	self    func() paxos.ReplicaID
	handler func(paxos.Message)

	hmu    sync.RWMutex // held while delivering, so Close waits for deliveries
	closed bool         // guarded by net.mu
	done   bool         // guarded by hmu
}

var _ replog.Transport = (*Transport)(nil)

// Send implements [replog.Transport].
func (t *Transport) Send(msgs []paxos.Message) { t.net.send(t, msgs) }

func (t *Transport) deliver(m paxos.Message) {
	t.hmu.RLock()
	defer t.hmu.RUnlock()
	if !t.done {
		t.handler(m)
	}
}

// Peers implements [replog.Transport]: every other attached transport, in
// address order, connected unless a partition separates it.
func (t *Transport) Peers() []replog.Peer {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	var out []replog.Peer
	for _, addr := range t.net.sortedAddrs() {
		o := t.net.eps[addr]
		if o == t {
			continue
		}
		out = append(out, replog.Peer{
			ID:        o.self(),
			Addr:      addr,
			Connected: !o.closed && t.net.group[addr] == t.net.group[t.addr],
		})
	}
	return out
}

// Close implements [replog.Transport]: the transport stops sending and
// receiving; no handler call is running or starts after Close returns.
// Idempotent.
func (t *Transport) Close() error {
	t.net.mu.Lock()
	t.closed = true
	t.net.mu.Unlock()
	t.hmu.Lock()
	t.done = true
	t.hmu.Unlock()
	return nil
}

func cloneMessage(m paxos.Message) paxos.Message {
	if m.Actions != nil {
		as := make([]paxos.Action, len(m.Actions))
		for i, a := range m.Actions {
			as[i] = cloneAction(a)
		}
		m.Actions = as
	}
	m.Config = cloneMembership(m.Config)
	return m
}
