package paxos

import (
	"cmp"
	"fmt"
	"slices"
)

// Storage is the core's read-only view of the durable log. The driver's store
// satisfies it; the core never writes through it (writes leave in Ready).
// Methods are called from the driver's goroutine only, during the core's
// calls; errors are fatal and returned wrapped by the core.
type Storage interface {
	// InitialState returns the persisted HardState: the zero HardState
	// (Replica == 0) for an empty store.
	InitialState() (HardState, error)
	// Action returns the stored action at p, if any.
	Action(p Position) (Action, bool, error)
	// Actions returns stored actions in [from, to), ascending: at least one
	// if any exists, then it stops once maxBytes is passed.
	Actions(from, to Position, maxBytes int) ([]Action, error)
	// LastPosition returns the highest stored position, if any.
	LastPosition() (Position, bool, error)
}

// configAt is a learned membership and the position of its EntryConfig.
type configAt struct {
	at Position
	m  Membership
}

// unstableAction is an action handed out (or about to be) in a Ready that
// the driver may not have persisted yet.
type unstableAction struct {
	a   Action
	seq uint64
}

// Core is one replica's deterministic protocol state machine: acceptor,
// learner, and while campaigning or elected, coordinator. It is not safe for
// concurrent use; the driver calls it from one goroutine.
type Core struct {
	cfg Config
	st  Storage
	id  ReplicaID
	now uint64

	hs      HardState
	hsDirty bool
	// mustSync: the pending batch holds something a message of the batch or
	// a later decision relies on (see Ready.MustSync and the package doc).
	mustSync bool

	next      Position            // one past the highest stored position
	learnedTo Position            // every position below it is learned or truncated
	ahead     map[Position]Action // learned actions above learnedTo
	cfgs      []configAt          // learned configs (Cluster != 0), ascending
	// cfgUnknown: after a catch-up jump past a truncation, the membership in
	// force below cfgUnknownTo is not known until learnedTo passes it; the
	// replica may not campaign meanwhile.
	cfgUnknown   bool
	cfgUnknownTo Position

	deliver []Action // learned, contiguous, for the application

	unstable map[Position]unstableAction
	// saved holds the actions of the Readies advanced since, at positions
	// not yet learned in order (at or above learnedTo): what storage holds
	// there, without a read. Learning a position just accepted (the
	// coordinator counting answers, a follower's learned broadcast) is the
	// hot path, and a storage read per position cost more than the rest of
	// the step. A cache: bounded by maxSaved, emptied when it overflows.
	saved         map[Position]Action
	savedBytes    int // entry bytes in saved
	pend          []Action
	pendIdx       map[Position]int
	truncateBelow Position
	msgs          []Message
	events        []Event
	local         []Message // messages to self, handled before the call returns
	// held are the coordinator's answers to its own writes: each counts
	// once Advance reports saved the Ready (seq) holding the accept, so its
	// write requests may leave before that Ready is durable (Ready.Early).
	held []heldMessage
	seq  uint64 // sequence number of the next Ready
	// sentLearnedTo is the learned position of the last Ready advanced:
	// the learned broadcasts below it have been sent. A heartbeat reports
	// no more, so that one sent while a save is in flight does not
	// overtake the broadcasts it would announce (the followers would start
	// a needless catch-up, and might answer a retransmitted write at a
	// position they learned from it before it is durable).
	sentLearnedTo Position

	// As an acceptor: the coordinator heard from most recently.
	lease           Proposal
	leaseAt         uint64
	leaseKnown      bool
	leader          ReplicaID
	leaderProposal  Proposal
	leaderAt        uint64
	leaderKnown     bool
	leaderLearnedTo Position

	role      Role
	proposal  Proposal
	lastRound uint64
	camp      *campaign
	w         *writer
	rec       *recovery
	cu        catchup

	refusedAt      map[ReplicaID]uint64
	refused        uint64
	refusedByPeers uint64

	pendingErr error // a storage error met while handling local messages
}

// heldMessage is a message to self waiting for the Ready seq to be saved.
type heldMessage struct {
	m   Message
	seq uint64
}

// New returns a Core for the replica whose durable state st holds. It scans
// the stored log once to rebuild the in-memory index.
func New(cfg Config, st Storage) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new core: %w", err)
	}
	cfg = cfg.withDefaults()
	c := &Core{
		cfg:       cfg,
		st:        st,
		id:        cfg.Replica,
		ahead:     map[Position]Action{},
		unstable:  map[Position]unstableAction{},
		saved:     map[Position]Action{},
		pendIdx:   map[Position]int{},
		refusedAt: map[ReplicaID]uint64{},
		role:      RoleFollower,
		seq:       1,
	}
	hs, err := st.InitialState()
	if err != nil {
		return nil, fmt.Errorf("new core: read hard state: %w", err)
	}
	switch {
	case hs.Replica == 0:
		hs = HardState{Replica: cfg.Replica, Status: StatusEmpty}
		c.hsDirty, c.mustSync = true, true
	case hs.Replica != cfg.Replica:
		return nil, fmt.Errorf("new core: store belongs to replica %d, not %d", hs.Replica, cfg.Replica)
	}
	if hs.Status == 0 {
		hs.Status = StatusEmpty
		c.hsDirty, c.mustSync = true, true
	}
	c.hs = hs
	c.hs.Membership = hs.Membership.clone()
	if hs.Membership.Cluster != 0 {
		c.cfgs = []configAt{{at: hs.ConfigAt, m: c.hs.Membership}}
	}
	c.next = hs.Begin
	c.learnedTo = hs.Begin
	if err := c.scan(); err != nil {
		return nil, err
	}
	if c.hs.Status != StatusVoting {
		c.startRecovery()
	} else if cfg.StartWithLease {
		// A replica that restarts cannot know whether it acknowledged a
		// coordinator's heartbeat just before it stopped: it behaves as if
		// it had, and promises no one (its own campaigns included) until
		// the lease it may have renewed has lapsed. Without this, a
		// restarted replica could hand a newcomer the vote that deposes a
		// leader whose lease it renewed a moment earlier, and that leader
		// could serve a stale read. The unknown holder is Proposal{}: any
		// live coordinator's heartbeat replaces it.
		c.lease, c.leaseAt, c.leaseKnown = Proposal{}, c.now, true
	}
	c.drainLocal()
	return c, nil
}

// scan rebuilds next, learnedTo, ahead, cfgs and the delivery queue from
// storage.
func (c *Core) scan() error {
	last, ok, err := c.st.LastPosition()
	if err != nil {
		return fmt.Errorf("new core: last position: %w", err)
	}
	if !ok || last < c.hs.Begin {
		return nil
	}
	for from := c.hs.Begin; from <= last; {
		as, err := c.st.Actions(from, last+1, 1<<20)
		if err != nil {
			return fmt.Errorf("new core: read actions from %d: %w", from, err)
		}
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			c.next = max(c.next, a.Position+1)
			if a.Position < c.hs.LearnedTo {
				// Below the saved watermark the stored value is the
				// chosen one, flag or not.
				a.Learned = true
			}
			if a.Learned {
				c.markLearned(a)
			}
		}
		from = as[len(as)-1].Position + 1
	}
	return nil
}

// Tick advances logical time by one tick: retries, heartbeats, leases and
// timeouts are counted in ticks.
func (c *Core) Tick() {
	c.now++
	c.tickRecovery()
	c.tickCatchup()
	c.tickCampaign()
	c.tickWriter()
	c.drainLocal()
}

// Step handles one incoming message. Messages for another replica, from
// another cluster or malformed are dropped (a refusal may be sent back). The
// error is a storage error, which is fatal.
func (c *Core) Step(m Message) error {
	if m.To != 0 && m.To != c.id {
		return nil
	}
	if m.From == c.id || m.From == 0 {
		return nil
	}
	if m.Type != MsgRefused && m.Cluster != 0 && c.hs.Cluster != 0 && m.Cluster != c.hs.Cluster {
		c.refuse(m.From, fmt.Sprintf("message from cluster %d refused by replica %d of cluster %d", m.Cluster, c.id, c.hs.Cluster))
		c.drainLocal()
		return nil
	}
	if err := c.step(m); err != nil {
		return err
	}
	return c.drainLocalErr()
}

// step dispatches one message, local or remote.
func (c *Core) step(m Message) error {
	switch m.Type {
	case MsgPromiseRequest:
		return c.handlePromiseRequest(m)
	case MsgPromiseResponse:
		return c.handlePromiseResponse(m)
	case MsgWriteRequest:
		return c.handleWriteRequest(m)
	case MsgWriteResponse:
		return c.handleWriteResponse(m)
	case MsgLearned:
		return c.handleLearned(m)
	case MsgRecoverRequest:
		c.handleRecoverRequest(m)
	case MsgRecoverResponse:
		c.handleRecoverResponse(m)
	case MsgCatchupRequest:
		return c.handleCatchupRequest(m)
	case MsgCatchupResponse:
		return c.handleCatchupResponse(m)
	case MsgHeartbeat:
		c.handleHeartbeat(m)
	case MsgHeartbeatResponse:
		return c.handleHeartbeatResponse(m)
	case MsgRefused:
		c.refusedByPeers++
		c.events = append(c.events, Refused{From: m.From, Reason: m.Reason})
	case MsgPreVoteRequest:
		c.handlePreVoteRequest(m)
	case MsgPreVoteResponse:
		return c.handlePreVoteResponse(m)
	}
	// Unknown types (a newer peer's) are ignored.
	return nil
}

// drainLocal handles messages to self. Storage errors cannot happen for
// local messages that only touch in-memory state; others are reported by
// drainLocalErr.
func (c *Core) drainLocal() {
	if err := c.drainLocalErr(); err != nil {
		c.pendingErr = err
	}
}

func (c *Core) drainLocalErr() error {
	for {
		for len(c.local) > 0 {
			m := c.local[0]
			c.local = c.local[1:]
			if err := c.step(m); err != nil {
				return err
			}
		}
		if err := c.pendingErr; err != nil {
			c.pendingErr = nil
			return err
		}
		if err := c.progress(); err != nil {
			return err
		}
		if len(c.local) == 0 {
			c.checkInvariants()
			return nil
		}
	}
}

// progress moves the state machines that wait on learned positions: the
// election's fill, a campaign's catch-up and recovery.
func (c *Core) progress() error {
	if c.role != RoleFollower && c.proposal.Less(c.hs.Promised) {
		c.lose(c.hs.Promised, "the local replica promised a higher proposal")
	}
	if c.camp != nil && c.cfgUnknown {
		c.events = append(c.events, CampaignFailed{Reason: "membership in force unknown after catching up past a truncation"})
		c.resetRole()
	}
	if cp := c.camp; cp != nil && cp.won {
		if cp.catchTo > 0 && c.learnedTo >= cp.catchTo {
			cp.catchTo = 0
			c.startFillRound()
		}
		if err := c.resolveFill(); err != nil {
			return err
		}
		c.checkElected()
	}
	c.checkRecoveryDone()
	return nil
}

// send queues m for the transport, or for local handling when addressed to
// self.
func (c *Core) send(m Message) {
	m.Cluster = c.hs.Cluster
	m.From = c.id
	if m.To == c.id {
		c.local = append(c.local, m)
		return
	}
	c.msgs = append(c.msgs, m)
}

// broadcast sends m to every peer (To == 0) and to self.
func (c *Core) broadcast(m Message) {
	m.To = 0
	c.send(m)
	m.To = c.id
	c.send(m)
}

// refuse counts a refused message from peer and answers it with MsgRefused,
// at most once per LeaseTicks.
func (c *Core) refuse(peer ReplicaID, reason string) {
	c.refused++
	if at, ok := c.refusedAt[peer]; ok && c.now-at < uint64(c.cfg.LeaseTicks) {
		return
	}
	c.refusedAt[peer] = c.now
	c.send(Message{Type: MsgRefused, To: peer, Reason: reason})
}

// getAction returns the action at p, from the unstable overlay or storage.
func (c *Core) getAction(p Position) (Action, bool, error) {
	if u, ok := c.unstable[p]; ok {
		return c.markBelow(u.a), true, nil
	}
	if a, ok := c.saved[p]; ok {
		return c.markBelow(a), true, nil
	}
	if p >= c.next {
		// Nothing is stored at or above next (scan and putAction keep it
		// above every stored position): no read, which keeps catch-up of
		// an empty replica from reading storage once per position.
		return Action{}, false, nil
	}
	a, ok, err := c.st.Action(p)
	if err != nil {
		return Action{}, false, fmt.Errorf("read action %d: %w", p, err)
	}
	return c.markBelow(a), ok, nil
}

// markBelow sets a's Learned flag if its position is learned in order: the
// value stored below learnedTo is the chosen one even when its learned mark
// was never written (the watermark, HardState.LearnedTo, stands for it).
func (c *Core) markBelow(a Action) Action {
	if a.Position < c.learnedTo {
		a.Learned = true
	}
	return a
}

// putAction queues a to be persisted in the next Ready. A caller that stores
// a vote (an accept or a promise) also sets mustSync; a learned mark alone
// does not need it.
func (c *Core) putAction(a Action) {
	c.unstable[a.Position] = unstableAction{a: a, seq: c.seq}
	if i, ok := c.pendIdx[a.Position]; ok {
		c.pend[i] = a
	} else {
		c.pendIdx[a.Position] = len(c.pend)
		c.pend = append(c.pend, a)
	}
	c.next = max(c.next, a.Position+1)
}

// setStatus persists a status transition and reports it.
func (c *Core) setStatus(s Status) {
	if c.hs.Status == s {
		return
	}
	c.events = append(c.events, StatusChanged{From: c.hs.Status, To: s})
	c.hs.Status = s
	c.hsDirty, c.mustSync = true, true
}

// learn stores a as learned, unless its position is truncated or already
// learned (a learned action is never overwritten). Two different values
// learned at one position break the protocol: learn panics.
//
// When a is the next position in order and the action this replica stores
// (or is about to) already holds a's value, nothing is written for it: the
// watermark (HardState.LearnedTo, in the next Ready) records it. Otherwise,
// and for every position learned out of order, the whole learned action is
// written, as a crash may lose the watermark but a position above it must
// still be known learned only from its own mark.
func (c *Core) learn(a Action) error {
	if a.Position < c.hs.Begin {
		return nil
	}
	ex, ok, err := c.getAction(a.Position)
	if err != nil {
		return err
	}
	c.learnOver(a, ex, ok)
	return nil
}

// learnOver is learn at a position at or above Begin, given what getAction
// returns there: ex, if ok.
func (c *Core) learnOver(a, ex Action, ok bool) {
	p := a.Position
	if ok && ex.Learned {
		checkSameValue(ex, a)
		return
	}
	a.Learned = true
	if ok && p == c.learnedTo && !ex.Performed.IsZero() && sameEntry(ex.Entry, a.Entry) {
		c.markLearned(a)
		return
	}
	if ok && a.Promised.Less(ex.Promised) {
		a.Promised = ex.Promised
	}
	c.putAction(a)
	c.markLearned(a)
}

// checkSameValue panics if two learned actions at one position hold
// different values. A tombstone NOP may stand for any truncated value.
func checkSameValue(a, b Action) {
	if a.Entry.Type == EntryNop && a.Entry.Tombstone || b.Entry.Type == EntryNop && b.Entry.Tombstone {
		return
	}
	if !sameEntry(a.Entry, b.Entry) {
		panic(fmt.Sprintf("paxos: two values learned at position %d: %+v and %+v", a.Position, a.Entry, b.Entry))
	}
}

// sameEntry reports whether a and b are the same value.
func sameEntry(a, b Entry) bool {
	if a.Type != b.Type || a.To != b.To || a.Tombstone != b.Tombstone || string(a.Data) != string(b.Data) {
		return false
	}
	if (a.Config == nil) != (b.Config == nil) {
		return false
	}
	if a.Config != nil {
		return a.Config.Cluster == b.Config.Cluster && slices.Equal(a.Config.Members, b.Config.Members)
	}
	return true
}

// markLearned updates the in-memory index for a learned action: learnedTo,
// the delivery queue, membership and truncation. The effects of a learned
// EntryConfig on HardState and of a learned EntryTruncate are applied in
// position order, once every position below is learned, so HardState's
// membership is always the one in force at learnedTo.
func (c *Core) markLearned(a Action) {
	p := a.Position
	c.next = max(c.next, p+1)
	if p < c.learnedTo {
		return
	}
	if c.w != nil {
		c.w.learned(p)
	}
	if a.Entry.Type == EntryConfig && a.Entry.Config != nil {
		c.addConfig(p, *a.Entry.Config)
	}
	c.ahead[p] = a
	c.drainLearned()
}

// drainLearned advances learnedTo over contiguous learned positions.
func (c *Core) drainLearned() {
	for {
		b, ok := c.ahead[c.learnedTo]
		if !ok {
			break
		}
		delete(c.ahead, c.learnedTo)
		if c.learnedTo >= c.cfg.Applied {
			c.deliver = append(c.deliver, b)
		}
		c.learnedTo++
		c.applyInOrder(b)
	}
	c.pruneConfigs()
}

// applyInOrder applies the effects of the learned action b once every
// position below it is learned. A truncation that would cut below the
// membership in force (HardState keeps only that one) is skipped: the next
// truncation past it takes effect.
func (c *Core) applyInOrder(b Action) {
	switch e := b.Entry; e.Type {
	case EntryConfig:
		if e.Config != nil {
			c.setBaseConfig(*e.Config, b.Position)
		}
	case EntryTruncate:
		if e.To > c.hs.ConfigAt || c.hs.Membership.Cluster == 0 {
			c.truncate(min(e.To, b.Position))
		}
	case EntryNop:
		if e.Tombstone && (b.Position > c.hs.ConfigAt || c.hs.Membership.Cluster == 0) {
			c.truncate(b.Position)
		}
	}
}

// addConfig records a learned membership at position at.
func (c *Core) addConfig(at Position, m Membership) {
	if m.Cluster == 0 || (c.hs.Cluster != 0 && c.hs.Cluster != m.Cluster) {
		return
	}
	i, found := slices.BinarySearchFunc(c.cfgs, at, func(x configAt, at Position) int { return cmp.Compare(x.at, at) })
	if !found {
		c.cfgs = slices.Insert(c.cfgs, i, configAt{at: at, m: m.clone()})
	}
}

// setBaseConfig makes m, learned at position at below learnedTo, the
// membership in force at learnedTo (kept in HardState), if it is newer.
func (c *Core) setBaseConfig(m Membership, at Position) {
	if m.Cluster == 0 || (c.hs.Cluster != 0 && c.hs.Cluster != m.Cluster) {
		return
	}
	c.addConfig(at, m)
	if c.hs.Membership.Cluster != 0 && at <= c.hs.ConfigAt {
		return
	}
	c.hs.Cluster = m.Cluster
	c.hs.Membership = m.clone()
	c.hs.ConfigAt = at
	c.hsDirty, c.mustSync = true, true
	if at >= c.cfgUnknownTo {
		c.cfgUnknown = false
	}
	c.events = append(c.events, MembershipChanged{At: at, Membership: m.clone()})
}

// pruneConfigs drops learned configs no position at or above learnedTo
// needs: it keeps the one in force at learnedTo and every one above.
func (c *Core) pruneConfigs() {
	i := 0
	for i+1 < len(c.cfgs) && c.cfgs[i+1].at < c.learnedTo {
		i++
	}
	if i > 0 {
		c.cfgs = slices.Delete(c.cfgs, 0, i)
	}
}

// truncate moves Begin to b: every position below b is treated as learned
// and deleted from storage. It does not set mustSync: a truncation only
// forgets learned positions, and losing it on a crash brings them back.
func (c *Core) truncate(b Position) {
	if b <= c.hs.Begin {
		return
	}
	c.hs.Begin = b
	c.hsDirty = true
	c.truncateBelow = max(c.truncateBelow, b)
	for p := range c.unstable {
		if p < b {
			delete(c.unstable, p)
		}
	}
	for p, a := range c.saved {
		if p < b {
			c.dropSaved(p, a)
		}
	}
	for p := range c.ahead {
		if p < b {
			delete(c.ahead, p)
		}
	}
	c.next = max(c.next, b)
	if c.learnedTo < b {
		c.learnedTo = b
		c.drainLearned()
	}
}

// configFor returns the membership in force at p: the latest learned
// EntryConfig below p, or before the first one the initialisation set.
func (c *Core) configFor(p Position) Membership {
	for i := len(c.cfgs) - 1; i >= 0; i-- {
		if c.cfgs[i].at < p {
			return c.cfgs[i].m
		}
	}
	return c.hs.Membership
}

// latestConfig returns the latest learned membership.
func (c *Core) latestConfig() Membership {
	if n := len(c.cfgs); n > 0 {
		return c.cfgs[n-1].m
	}
	return c.hs.Membership
}

// knownMember reports whether id is a member of any membership this core
// knows about (latest, or in force at a position still in flight).
func (c *Core) knownMember(id ReplicaID) bool {
	if c.hs.Membership.isMember(id) {
		return true
	}
	for _, x := range c.cfgs {
		if x.m.isMember(id) {
			return true
		}
	}
	return false
}

// jitter returns a retry delay in [RetryTicks, 2*RetryTicks).
func (c *Core) jitter() uint64 {
	t := c.cfg.RetryTicks
	if c.cfg.Rand != nil && t > 1 {
		return uint64(t + c.cfg.Rand.Intn(t))
	}
	return uint64(t)
}

// HasReady reports whether Ready would return anything.
func (c *Core) HasReady() bool {
	return c.hsDirty || c.hs.LearnedTo != c.learnedTo || len(c.pend) > 0 || c.truncateBelow != 0 || len(c.msgs) > 0 ||
		len(c.deliver) > 0 || len(c.events) > 0 || c.w.hasUnsent()
}

// Ready returns the next batch. The driver sends its Early messages,
// persists it (synced if MustSync), sends its other messages, publishes its
// learned actions and then calls Advance with it. The driver may take further
// Readies before it advances an earlier one (replog's driver does while a
// save is in flight): each Ready's unsaved actions and held own accepts are
// tracked by its sequence number, so the driver must persist them in the
// order taken and call Advance in that order.
func (c *Core) Ready() Ready {
	c.w.flush(c)
	rd := Ready{seq: c.seq, MustSync: c.mustSync, learnedTo: c.learnedTo}
	c.seq++
	c.mustSync = false
	if c.hs.LearnedTo != c.learnedTo {
		// Every position below learnedTo holds its chosen value in
		// storage or in this batch (the driver saves the hard state after
		// the actions of its batch, and batches in order).
		c.hs.LearnedTo = c.learnedTo
		if !c.hsDirty {
			rd.LearnedToOnly = true
		}
		c.hsDirty = true
	}
	if c.hsDirty {
		hs := c.hs
		hs.Membership = c.hs.Membership.clone()
		rd.HardState = &hs
		c.hsDirty = false
	}
	if len(c.pend) > 0 {
		rd.Actions = c.pend
		slices.SortFunc(rd.Actions, func(a, b Action) int { return cmp.Compare(a.Position, b.Position) })
		c.pend = nil
		clear(c.pendIdx)
	}
	rd.TruncateBelow, c.truncateBelow = c.truncateBelow, 0
	for _, m := range c.msgs {
		if m.Type == MsgWriteRequest {
			rd.Early = append(rd.Early, m)
		} else {
			rd.Messages = append(rd.Messages, m)
		}
	}
	c.msgs = nil
	rd.Learned, c.deliver = c.deliver, nil
	rd.Events, c.events = c.events, nil
	return rd
}

// Advance tells the core that rd was persisted, sent and published. The
// coordinator's own accepts in rd count from now on: there may be a new
// Ready.
func (c *Core) Advance(rd Ready) {
	c.sentLearnedTo = max(c.sentLearnedTo, rd.learnedTo)
	for p, u := range c.unstable {
		if u.seq <= rd.seq {
			delete(c.unstable, p)
		}
	}
	c.keepSaved(rd)
	n := 0
	for _, h := range c.held {
		if h.seq <= rd.seq {
			c.send(h.m)
		} else {
			c.held[n] = h
			n++
		}
	}
	clear(c.held[n:])
	c.held = c.held[:n]
	c.drainLocal()
}

// keepSaved records rd's actions, now in storage, in c.saved, and drops
// what it no longer needs: positions learned in order and truncated ones.
func (c *Core) keepSaved(rd Ready) {
	for p, a := range c.saved {
		if p < c.learnedTo || p < c.hs.Begin {
			c.dropSaved(p, a)
		}
	}
	for _, a := range rd.Actions {
		// Save deletes below TruncateBelow after writing the actions.
		if a.Position >= c.learnedTo && a.Position >= c.hs.Begin && a.Position >= rd.TruncateBelow {
			if old, ok := c.saved[a.Position]; ok {
				c.dropSaved(a.Position, old)
			}
			c.saved[a.Position] = a
			c.savedBytes += len(a.Entry.Data)
		}
	}
	if len(c.saved) > c.maxSaved() || c.savedBytes > maxSavedBytes {
		clear(c.saved)
		c.savedBytes = 0
	}
}

// dropSaved removes a, at p, from c.saved.
func (c *Core) dropSaved(p Position, a Action) {
	delete(c.saved, p)
	c.savedBytes -= len(a.Entry.Data)
}

// maxSaved bounds c.saved: the coordinator's window, twice over (positions
// written and not yet learned in order, on any replica), and some room.
func (c *Core) maxSaved() int { return 2*c.cfg.Window + 64 }

// maxSavedBytes bounds the entry bytes c.saved keeps: a follower that
// misses learned broadcasts must not keep large entries for long.
const maxSavedBytes = 64 << 20

// Status returns a snapshot of the core's state.
func (c *Core) Status() CoreStatus {
	s := CoreStatus{
		Replica:        c.id,
		Cluster:        c.hs.Cluster,
		Status:         c.hs.Status,
		Role:           c.role,
		Tick:           c.now,
		Promised:       c.hs.Promised,
		Begin:          c.hs.Begin,
		End:            c.next,
		LearnedTo:      c.learnedTo,
		Membership:     c.latestConfig().clone(),
		ConfigAt:       c.hs.ConfigAt,
		Member:         c.latestConfig().isMember(c.id),
		Voter:          c.latestConfig().isVoter(c.id),
		Refused:        c.refused,
		RefusedByPeers: c.refusedByPeers,
	}
	if c.role != RoleFollower {
		s.Proposal = c.proposal
	}
	if c.w != nil {
		s.InFlight = len(c.w.inflight)
		if c.role == RoleCoordinator {
			s.LeaseRemaining = c.w.leaseRemaining(c)
		}
	}
	switch {
	case c.role == RoleCoordinator:
		s.Leader, s.LeaderProposal = c.id, c.proposal
	case c.leaderKnown && c.now-c.leaderAt < uint64(c.cfg.LeaseTicks):
		s.Leader, s.LeaderProposal = c.leader, c.leaderProposal
	}
	return s
}

// leaseLive reports whether this replica heard from a live coordinator (or
// promised a proposer) within LeaseTicks.
func (c *Core) leaseLive() bool {
	return c.leaseKnown && c.now-c.leaseAt < uint64(c.cfg.LeaseTicks)
}
