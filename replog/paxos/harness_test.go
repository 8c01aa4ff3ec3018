package paxos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// memStore is a crashable in-memory Storage. hs and acts are what was saved
// (what reads see); the durable image holds only what was synced, as a disk
// does, and saves stay in order: a sync makes every earlier save durable. A
// crash keeps the durable image plus a prefix of the unsynced saves (a disk
// may have written some of them).
type memStore struct {
	hs      HardState
	hsSet   bool
	acts    map[Position]Action
	dur     *memImage // nil: equal to hs and acts (nothing saved since the last sync)
	pending []Ready   // saved but not synced, oldest first
}

// memImage is the durable state of a memStore.
type memImage struct {
	hs    HardState
	hsSet bool
	acts  map[Position]Action
}

func newMemStore() *memStore { return &memStore{acts: map[Position]Action{}} }

func (s *memStore) InitialState() (HardState, error) {
	if !s.hsSet {
		return HardState{}, nil
	}
	hs := s.hs
	hs.Membership = s.hs.Membership.clone()
	return hs, nil
}

func (s *memStore) Action(p Position) (Action, bool, error) {
	a, ok := s.acts[p]
	return a, ok, nil
}

func (s *memStore) Actions(from, to Position, maxBytes int) ([]Action, error) {
	var ps []Position
	for p := range s.acts {
		if p >= from && p < to {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	var out []Action
	size := 0
	for _, p := range ps {
		if len(out) > 0 && size >= maxBytes {
			break
		}
		out = append(out, s.acts[p])
		size += actionSize(s.acts[p])
	}
	return out, nil
}

func (s *memStore) LastPosition() (Position, bool, error) {
	if len(s.acts) == 0 {
		return 0, false, nil
	}
	return slices.Max(slices.Collect(maps.Keys(s.acts))), true, nil
}

// applyReady applies rd's durable part to a hard state and actions.
func applyReady(hs *HardState, hsSet *bool, acts map[Position]Action, rd Ready) {
	if rd.HardState != nil {
		*hs = *rd.HardState
		hs.Membership = rd.HardState.Membership.clone()
		*hsSet = true
	}
	for _, a := range rd.Actions {
		acts[a.Position] = a
	}
	if rd.TruncateBelow != 0 {
		for p := range acts {
			if p < rd.TruncateBelow {
				delete(acts, p)
			}
		}
	}
}

// save applies rd's durable part, not yet synced.
func (s *memStore) save(rd Ready) {
	if s.dur == nil {
		hs := s.hs
		hs.Membership = s.hs.Membership.clone()
		s.dur = &memImage{hs: hs, hsSet: s.hsSet, acts: maps.Clone(s.acts)}
	}
	applyReady(&s.hs, &s.hsSet, s.acts, rd)
	s.pending = append(s.pending, rd)
}

// sync makes every saved batch durable and returns those it made durable.
func (s *memStore) sync() []Ready { return s.keep(len(s.pending)) }

// keep makes the first k unsynced batches durable and returns them.
func (s *memStore) keep(k int) []Ready {
	done := s.pending[:k]
	for _, rd := range done {
		applyReady(&s.dur.hs, &s.dur.hsSet, s.dur.acts, rd)
	}
	s.pending = s.pending[k:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
	return done
}

// crash keeps the durable image and the first k unsynced batches (k is cut
// to their number), drops the rest, and returns the batches it kept.
func (s *memStore) crash(k int) []Ready {
	if s.dur == nil {
		return nil
	}
	kept := s.keep(min(k, len(s.pending)))
	s.pending = nil
	s.hs, s.hsSet, s.acts = s.dur.hs, s.dur.hsSet, maps.Clone(s.dur.acts)
	s.hs.Membership = s.dur.hs.Membership.clone()
	s.dur = nil
	return kept
}

// durableState returns the hard state and the action at p a crash now would
// keep (without unsynced saves).
func (s *memStore) durableState(p Position) (HardState, Action, bool) {
	if s.dur == nil {
		a, ok := s.acts[p]
		return s.hs, a, ok
	}
	a, ok := s.dur.acts[p]
	return s.dur.hs, a, ok
}

// durable returns the actions a crash now would keep (without unsynced
// saves), ascending.
func (s *memStore) durable() []Action {
	acts := s.acts
	if s.dur != nil {
		acts = s.dur.acts
	}
	out := slices.Collect(maps.Values(acts))
	slices.SortFunc(out, func(a, b Action) int { return cmp.Compare(a.Position, b.Position) })
	return out
}

// node is one replica in a test cluster.
type node struct {
	id    ReplicaID
	core  *Core
	store *memStore
	cfg   Config
	down  bool
	// batches and synced count the batches processed with durable parts,
	// and those of them synced.
	batches, synced int
	// watermarkChecked: the positions below it under the saved learned
	// watermark were checked to hold their chosen values.
	watermarkChecked Position
}

// envelope is a message in flight.
type envelope struct {
	m  Message
	to ReplicaID
}

// cluster is a set of replicas over an in-memory network. It checks the
// safety invariants on every batch.
type cluster struct {
	cfg     Config // template
	nodes   map[ReplicaID]*node
	order   []ReplicaID
	net     []envelope
	cut     map[[2]ReplicaID]bool
	out     *strings.Builder // events and notes for scripts
	fail    func(format string, args ...any)
	chosen  map[Position]Action // first value learned anywhere
	history map[ReplicaID]map[Position][]Action
	wiped   map[ReplicaID]bool
	configs []Position // chosen EntryConfig positions, ascending
	noCheck bool       // benchmarks: skip the invariant checks
	syncAll bool       // sync every batch, whatever Ready.MustSync says
	onEvent func(n *node, e Event)
	// beforeSave, if set, runs after a batch's Early messages were sent and
	// before it is saved; it may crash the node.
	beforeSave func(n *node)
}

func newCluster(cfg Config, fail func(string, ...any)) *cluster {
	return &cluster{
		cfg:     cfg,
		nodes:   map[ReplicaID]*node{},
		cut:     map[[2]ReplicaID]bool{},
		out:     &strings.Builder{},
		fail:    fail,
		chosen:  map[Position]Action{},
		history: map[ReplicaID]map[Position][]Action{},
		wiped:   map[ReplicaID]bool{},
	}
}

// add creates a replica with an empty store.
func (cl *cluster) add(id ReplicaID) *node {
	cfg := cl.cfg
	cfg.Replica = id
	cfg.Addr = fmt.Sprintf("r%d:5051", id)
	if cfg.Cluster == 0 {
		cfg.Cluster = ClusterID(1000 + id)
	}
	n := &node{id: id, store: newMemStore(), cfg: cfg}
	cl.nodes[id] = n
	cl.order = append(cl.order, id)
	slices.Sort(cl.order)
	cl.history[id] = map[Position][]Action{}
	cl.start(n)
	return n
}

// start builds the node's core from its synced store.
func (cl *cluster) start(n *node) {
	c, err := New(n.cfg, n.store)
	if err != nil {
		cl.fail("new core %d: %v", n.id, err)
		return
	}
	n.core = c
	n.down = false
	// What a restart reads as learned below the watermark must be chosen.
	n.watermarkChecked = 0
	cl.checkWatermark(n)
	cl.process(n)
}

// crash stops a node: its unsynced state and unsent messages are lost.
func (cl *cluster) crash(id ReplicaID) { cl.crashKeeping(id, 0) }

// crashKeeping stops a node, keeping the first k of its unsynced saves (a
// disk may have written some of them before the power went).
func (cl *cluster) crashKeeping(id ReplicaID, k int) {
	n := cl.nodes[id]
	cl.recordDurable(n, n.store.crash(k))
	n.down = true
	n.core = nil
}

// recordDurable adds the votes of batches that became durable on n to the
// history the invariant checks count acceptors from: an accept counts only
// once it is on disk.
func (cl *cluster) recordDurable(n *node, rds []Ready) {
	for _, rd := range rds {
		for _, a := range rd.Actions {
			if !a.Performed.IsZero() || a.Learned {
				cl.history[n.id][a.Position] = append(cl.history[n.id][a.Position], a)
			}
		}
	}
}

// restart brings a crashed node back from its synced store.
func (cl *cluster) restart(id ReplicaID) {
	n := cl.nodes[id]
	if !n.down {
		return
	}
	cl.start(n)
}

// wipe destroys a node's disk; a new replica with newID takes its place.
func (cl *cluster) wipe(id, newID ReplicaID) *node {
	cl.crash(id)
	cl.wiped[id] = true
	cl.order = slices.DeleteFunc(cl.order, func(x ReplicaID) bool { return x == id })
	delete(cl.nodes, id)
	return cl.add(newID)
}

// process runs the node's Ready loop: persist, sync if the batch must be,
// check, send, publish, advance.
func (cl *cluster) process(n *node) {
	for n.core != nil && n.core.HasReady() {
		rd := n.core.Ready()
		for _, m := range rd.Early {
			if m.Type != MsgWriteRequest {
				cl.fail("replica %d sent %v before saving its batch", n.id, m.Type)
			}
			cl.enqueue(n, m)
		}
		if cl.beforeSave != nil && len(rd.Early) > 0 {
			if cl.beforeSave(n); n.down {
				return // the driver died between sending Early and saving
			}
		}
		n.store.save(rd)
		if rd.MustSync || cl.syncAll {
			cl.recordDurable(n, n.store.sync())
		}
		if rd.HardState != nil || len(rd.Actions) > 0 || rd.TruncateBelow != 0 {
			n.batches++
			if rd.MustSync {
				n.synced++
			}
		}
		cl.check(n, rd)
		for _, m := range rd.Messages {
			cl.checkOutgoing(n, m)
			cl.enqueue(n, m)
		}
		for _, e := range rd.Events {
			fmt.Fprintf(cl.out, "%d: %s\n", n.id, formatEvent(e))
		}
		n.core.Advance(rd)
		for _, e := range rd.Events {
			if cl.onEvent != nil {
				cl.onEvent(n, e)
			}
		}
	}
}

// enqueue puts a message of n on the network.
func (cl *cluster) enqueue(n *node, m Message) {
	if m.To != 0 {
		cl.net = append(cl.net, envelope{m: m, to: m.To})
		return
	}
	for _, id := range cl.order {
		if id != n.id {
			cl.net = append(cl.net, envelope{m: m, to: id})
		}
	}
}

// check verifies the safety invariants against one persisted batch.
func (cl *cluster) check(n *node, rd Ready) {
	if cl.noCheck {
		return
	}
	for _, a := range rd.Actions {
		if a.Learned {
			cl.checkLearned(n, a)
		}
	}
	for _, a := range rd.Learned {
		if !a.Learned {
			cl.fail("replica %d delivered unlearned position %d", n.id, a.Position)
		}
		cl.checkLearned(n, a)
	}
	if rd.HardState != nil {
		cl.checkWatermark(n)
	}
}

// checkWatermark: below the saved learned watermark, every stored action
// holds the value chosen at its position (the positions it newly covers
// since the last check).
func (cl *cluster) checkWatermark(n *node) {
	hs := n.store.hs
	for p := max(hs.Begin, n.watermarkChecked); p < hs.LearnedTo; p++ {
		a, ok := n.store.acts[p]
		want, chosen := cl.chosen[p]
		switch {
		case !ok:
			cl.fail("replica %d: position %d below its learned watermark %d is not stored", n.id, p, hs.LearnedTo)
		case !chosen:
			cl.fail("replica %d: position %d below its learned watermark %d holds %s, chosen nowhere", n.id, p, hs.LearnedTo, formatEntry(a.Entry))
		case !sameEntry(want.Entry, a.Entry) && !want.Entry.Tombstone && !a.Entry.Tombstone:
			cl.fail("replica %d: position %d below its learned watermark %d holds %s, chosen %s", n.id, p, hs.LearnedTo, formatEntry(a.Entry), formatEntry(want.Entry))
		}
	}
	n.watermarkChecked = max(n.watermarkChecked, hs.LearnedTo)
}

// checkLearned: no position is learned with two values anywhere, ever; the
// first time a position is learned, a quorum of the membership in force
// there must hold durably (synced) an accept of that value at that proposal.
func (cl *cluster) checkLearned(n *node, a Action) {
	prev, ok := cl.chosen[a.Position]
	if ok {
		if !sameEntry(prev.Entry, a.Entry) && !a.Entry.Tombstone && !prev.Entry.Tombstone {
			cl.fail("position %d learned with two values: %s (first) and %s (replica %d)", a.Position, formatEntry(prev.Entry), formatEntry(a.Entry), n.id)
		}
		return
	}
	cl.chosen[a.Position] = a
	if a.Entry.Type == EntryConfig {
		i, _ := slices.BinarySearch(cl.configs, a.Position)
		cl.configs = slices.Insert(cl.configs, i, a.Position)
	}
	if a.Position == 0 || a.Performed.IsZero() {
		return
	}
	m := cl.configFor(a.Position)
	var acc []ReplicaID
	for _, id := range m.Members {
		for _, h := range cl.history[id.ID][a.Position] {
			if h.Performed == a.Performed && sameEntry(h.Entry, a.Entry) {
				acc = append(acc, id.ID)
				break
			}
		}
	}
	if got, need := countVoters(m, acc), quorumSize(m, cl.cfg.Quorum); got < need {
		cl.fail("position %d learned by replica %d with %d acceptors among the voters of %v (need %d): %v (its configs %v, learned-to %d, begin %d)", a.Position, n.id, got, m, need, acc, n.core.cfgs, n.core.learnedTo, n.core.hs.Begin)
	}
}

// configFor is the membership in force at p according to the values chosen.
func (cl *cluster) configFor(p Position) Membership {
	i, _ := slices.BinarySearch(cl.configs, p)
	if i == 0 {
		return Membership{}
	}
	return *cl.chosen[cl.configs[i-1]].Entry.Config
}

// checkOutgoing: a replica that is not VOTING never accepts; every vote a
// message reports or relies on is durable when the message leaves.
func (cl *cluster) checkOutgoing(n *node, m Message) {
	switch m.Type {
	case MsgPromiseResponse, MsgWriteResponse, MsgHeartbeatResponse:
		if m.Result == ResultAccept && n.core.hs.Status != StatusVoting {
			cl.fail("replica %d (status %v) accepted %v", n.id, n.core.hs.Status, m.Type)
		}
	}
	if cl.noCheck {
		return
	}
	hs, _, _ := n.store.durableState(0)
	promised := func(what string) {
		if hs.Promised.Less(m.Proposal) {
			cl.fail("replica %d sent %s for proposal %v with only %v promised durably", n.id, what, m.Proposal, hs.Promised)
		}
	}
	accepted := func(what string, from, to Position) {
		for p := max(from, n.core.hs.Begin); p < to; p++ {
			if cur, ok := n.store.acts[p]; ok && (cur.Learned || p < n.store.hs.LearnedTo) {
				continue // a learned value is chosen: acknowledging it needs no vote
			}
			if _, a, ok := n.store.durableState(p); !ok || a.Performed != m.Proposal {
				cl.fail("replica %d sent %s for position %d at proposal %v before its accept was durable (durable: %+v)", n.id, what, p, m.Proposal, a)
			}
		}
	}
	switch {
	case m.Type == MsgPromiseRequest && m.Implicit:
		promised("an implicit promise request (counting its own promise)")
	case m.Type == MsgPromiseResponse && m.Result == ResultAccept && m.Implicit:
		promised("an implicit promise")
	case m.Type == MsgPromiseResponse && m.Result == ResultAccept:
		for p := max(m.Position, n.core.hs.Begin); p < m.End; p++ {
			if cur, ok := n.store.acts[p]; ok && (cur.Learned || p < n.store.hs.LearnedTo) {
				continue
			}
			eff := hs.Promised
			if _, a, ok := n.store.durableState(p); ok && eff.Less(a.Promised) {
				eff = a.Promised
			}
			if eff.Less(m.Proposal) {
				cl.fail("replica %d sent an explicit promise of %v at position %d with only %v promised durably", n.id, m.Proposal, p, eff)
			}
		}
	case m.Type == MsgHeartbeatResponse && m.Result == ResultAccept:
		promised("a heartbeat answer")
	case m.Type == MsgWriteResponse && m.Result == ResultAccept:
		promised("a write answer")
		accepted("a write answer", m.Position, m.End)
	}
}

// linked reports whether messages flow from a to b.
func (cl *cluster) linked(a, b ReplicaID) bool { return !cl.cut[[2]ReplicaID{a, b}] }

// deliverOne hands the i-th message in flight to its recipient.
func (cl *cluster) deliverOne(i int) {
	e := cl.net[i]
	cl.net = slices.Delete(cl.net, i, i+1)
	n, ok := cl.nodes[e.to]
	if !ok || n.down || !cl.linked(e.m.From, e.to) {
		return
	}
	if err := n.core.Step(e.m); err != nil {
		cl.fail("replica %d step: %v", n.id, err)
	}
	cl.process(n)
}

// stabilize delivers messages until none is left in flight.
func (cl *cluster) stabilize() {
	for steps := 0; len(cl.net) > 0; steps++ {
		if steps > 1_000_000 {
			cl.fail("stabilize does not converge")
			return
		}
		cl.deliverOne(0)
	}
}

// tick advances every live node by one tick.
func (cl *cluster) tick() {
	for _, id := range cl.order {
		if n := cl.nodes[id]; !n.down {
			n.core.Tick()
			cl.process(n)
		}
	}
}

// leader returns the live coordinator with the highest proposal, if any.
func (cl *cluster) leader() *node {
	var best *node
	for _, id := range cl.order {
		n := cl.nodes[id]
		if n.down || n.core.role != RoleCoordinator {
			continue
		}
		if best == nil || best.core.proposal.Less(n.core.proposal) {
			best = n
		}
	}
	return best
}

// printLog renders a node's state and learned log.
func (cl *cluster) printLog(id ReplicaID) string {
	n := cl.nodes[id]
	var b strings.Builder
	if n == nil || n.down {
		fmt.Fprintf(&b, "%d: down\n", id)
		return b.String()
	}
	s := n.core.Status()
	fmt.Fprintf(&b, "%d: %s %s begin=%d learned-to=%d end=%d promised=%d.%d members=%s\n", id, trimStatus(s.Status), trimRole(s.Role), s.Begin, s.LearnedTo, s.End, s.Promised.Round, s.Promised.Replica, formatMembers(s.Membership))
	as, _ := n.store.Actions(0, s.End, 1<<30)
	for _, a := range as {
		a.Learned = a.Learned || a.Position < n.store.hs.LearnedTo
		fmt.Fprintf(&b, "  %d %s %s\n", a.Position, actionState(a), formatEntry(a.Entry))
	}
	return b.String()
}

// printDurable renders what a crash of the node now would keep.
func (cl *cluster) printDurable(id ReplicaID) string {
	n := cl.nodes[id]
	var b strings.Builder
	if n == nil || n.down {
		fmt.Fprintf(&b, "%d: down\n", id)
		return b.String()
	}
	hs, _, _ := n.store.durableState(0)
	fmt.Fprintf(&b, "%d: durable %s begin=%d promised=%d.%d\n", id, trimStatus(hs.Status), hs.Begin, hs.Promised.Round, hs.Promised.Replica)
	for _, a := range n.store.durable() {
		a.Learned = a.Learned || a.Position < hs.LearnedTo
		fmt.Fprintf(&b, "  %d %s %s\n", a.Position, actionState(a), formatEntry(a.Entry))
	}
	return b.String()
}

// actionState names what an action records.
func actionState(a Action) string {
	switch {
	case a.Learned:
		return "learned"
	case a.Performed.IsZero():
		return "promised"
	}
	return "accepted"
}

func formatMembers(m Membership) string {
	var parts []string
	for _, x := range m.Members {
		s := fmt.Sprint(x.ID)
		if !x.Voter {
			s += "(nv)"
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func formatEntry(e Entry) string {
	switch e.Type {
	case EntryNop:
		if e.Tombstone {
			return "nop(tombstone)"
		}
		return "nop"
	case EntryAppend:
		return fmt.Sprintf("append(%s)", e.Data)
	case EntryTruncate:
		return fmt.Sprintf("truncate(to=%d)", e.To)
	case EntrySnapshot:
		return fmt.Sprintf("snapshot(%s)", e.Data)
	case EntryConfig:
		if e.Config == nil {
			return "config(nil)"
		}
		return fmt.Sprintf("config(cluster=%d %s)", e.Config.Cluster, formatMembers(*e.Config))
	}
	return "none"
}

func formatEvent(e Event) string {
	switch e := e.(type) {
	case Elected:
		return fmt.Sprintf("elected proposal=%d.%d last=%d", e.Proposal.Round, e.Proposal.Replica, e.Last)
	case LostLeadership:
		return fmt.Sprintf("lost leadership to %d.%d", e.By.Round, e.By.Replica)
	case CampaignFailed:
		return fmt.Sprintf("campaign failed by=%d.%d %s", e.By.Round, e.By.Replica, e.Reason)
	case Joined:
		return fmt.Sprintf("joined begin=%d end=%d", e.Begin, e.End)
	case StatusChanged:
		return fmt.Sprintf("status %s -> %s", trimStatus(e.From), trimStatus(e.To))
	case Refused:
		return fmt.Sprintf("refused by %d: %s", e.From, e.Reason)
	case NotInitialized:
		return fmt.Sprintf("not initialized (empty=%d)", e.Empty)
	case MembershipChanged:
		return fmt.Sprintf("membership at %d: %s", e.At, formatMembers(e.Membership))
	}
	return fmt.Sprintf("%T", e)
}

var _ = cmp.Compare[int]

func trimStatus(s Status) string { return strings.TrimPrefix(s.String(), "Status") }

func trimRole(r Role) string { return strings.TrimPrefix(r.String(), "Role") }
