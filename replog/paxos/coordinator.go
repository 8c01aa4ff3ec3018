package paxos

import (
	"cmp"
	"fmt"
	"slices"
)

// This file holds the coordinator (proposer): the pre-vote, the implicit
// promise round, the fill of every position a quorum may have written, then
// writes without a promise phase, learned broadcasts, heartbeats and
// membership changes.

// campaign is the state of an election in progress.
type campaign struct {
	// preVote: the pre-vote round runs and nothing is promised yet.
	// preVoteAt is the tick its current request was sent (echoed in Begin,
	// so only answers to it count); granted and refused hold the latest
	// answer of each voter to it.
	preVote   bool
	preVoteAt uint64
	granted   []ReplicaID
	refused   []ReplicaID
	refusedBy Proposal
	refusal   string

	accepted      map[ReplicaID]Position // implicit promises: the end each promiser reported
	acceptedOrder []ReplicaID
	won           bool     // a quorum of the latest membership promised
	fillEnd       Position // fill every position below it
	fillFrom      Position // first position not yet resolved
	fillReqFrom   Position // Position of the outstanding explicit promise request
	fillResp      map[ReplicaID]fillResp
	fillOrder     []ReplicaID
	deadline      uint64
	catchTo       Position // waiting for catch-up up to here (a responder truncated above fillFrom)
}

// fillResp is one explicit promise answer: it covers [fillReqFrom, end).
type fillResp struct {
	end     Position
	actions map[Position]Action
}

// Campaign starts an election with a proposal higher than any this replica
// has seen. It first runs the pre-vote (Raft's PreVote, §9.6 of Ongaro's
// thesis): it asks every voter, itself included, whether it would promise
// that proposal now, and starts the implicit promise round only once a
// quorum says yes. Nothing is promised before: a candidate that cannot win
// (the other voters hold a live lease from the coordinator) leaves every
// replica, its own included, as it was, so it cannot make its replica refuse
// the live coordinator. The outcome is reported in Ready.Events: Elected, or
// CampaignFailed. Rounds that a quorum did not answer, or answered IGNORED
// (not VOTING yet, a start-up lease), are retried every RetryTicks until
// Demote.
func (c *Core) Campaign() error {
	if c.role != RoleFollower {
		return ErrAlreadyCoordinator
	}
	if c.hs.Status != StatusVoting || !c.latestConfig().isVoter(c.id) || c.cfgUnknown {
		return ErrNotVoting
	}
	if c.leaseLive() && c.lease.Replica != c.id {
		return ErrLeaseHeld
	}
	c.proposal = Proposal{Round: max(c.lastRound, c.hs.Promised.Round) + 1, Replica: c.id}
	c.lastRound = c.proposal.Round
	c.role = RoleCampaigning
	c.camp = &campaign{accepted: map[ReplicaID]Position{}, preVote: !c.cfg.noPreVote}
	if c.camp.preVote {
		c.sendPreVote()
	} else {
		c.sendImplicitPromise()
	}
	return c.drainLocalErr()
}

// sendPreVote broadcasts the pre-vote request (self included) and forgets
// the answers to earlier ones: a yes counts only for the round it answered,
// so a stale yes cannot start the promise round after a coordinator was
// heard again.
func (c *Core) sendPreVote() {
	cp := c.camp
	cp.preVoteAt = c.now
	cp.granted, cp.refused = nil, nil
	cp.deadline = c.now + c.jitter()
	c.broadcast(Message{Type: MsgPreVoteRequest, Proposal: c.proposal, Begin: Position(c.now)})
}

// handlePreVoteResponse tallies pre-vote answers. A quorum of yes starts the
// implicit promise round at once (one round trip more than without the
// pre-vote, and no tick of waiting). A REJECT without a reason reports a
// higher promise: the campaign fails as the promise round would have. Lease
// refusals end the campaign once so many voters refused that no quorum can
// say yes; fewer are asked again with the next round, which starts one tick
// after the refuser's lease lapses (the killed coordinator's lease lapses on
// every replica within a tick or two) or after RetryTicks, whichever is
// first.
func (c *Core) handlePreVoteResponse(m Message) error {
	cp := c.camp
	if c.role != RoleCampaigning || cp == nil || !cp.preVote || uint64(m.Begin) != cp.preVoteAt {
		return nil
	}
	if !c.knownMember(m.From) {
		c.refuse(m.From, fmt.Sprintf("replica %d is not a member of cluster %d", m.From, c.hs.Cluster))
		return nil
	}
	latest := c.latestConfig()
	switch m.Result {
	case ResultAccept:
		if m.Proposal != c.proposal {
			return nil
		}
		cp.refused = slices.DeleteFunc(cp.refused, func(id ReplicaID) bool { return id == m.From })
		if !slices.Contains(cp.granted, m.From) {
			cp.granted = append(cp.granted, m.From)
		}
		if countVoters(latest, cp.granted) < quorumSize(latest, c.cfg.Quorum) {
			return nil
		}
		if res, by, reason := c.promiseVerdict(c.proposal); res != ResultAccept {
			// The local replica promised another candidate, or heard a
			// coordinator, since it said yes: its own promise would fail.
			if reason == "" {
				reason = "the local replica promised a higher proposal"
			}
			c.lose(by, "pre-vote: "+reason)
			return nil
		}
		cp.preVote = false
		cp.granted, cp.refused = nil, nil
		c.sendImplicitPromise()
	case ResultReject:
		if m.Reason == "" {
			if c.proposal.Less(m.Proposal) {
				c.lose(m.Proposal, "")
			}
			return nil
		}
		cp.granted = slices.DeleteFunc(cp.granted, func(id ReplicaID) bool { return id == m.From })
		if !slices.Contains(cp.refused, m.From) {
			cp.refused = append(cp.refused, m.From)
		}
		cp.refusedBy, cp.refusal = maxProposal(cp.refusedBy, m.Proposal), m.Reason
		if countVoters(latest, cp.refused) > latest.voters()-quorumSize(latest, c.cfg.Quorum) {
			c.lose(cp.refusedBy, "pre-vote: "+cp.refusal)
			return nil
		}
		// Ask again one tick after the refuser's lease lapses (it reported
		// the ticks left in Position), if that is before the retry: the
		// lease of a coordinator that just died lapses on the voters within
		// a tick or two of each other, and failover must not wait longer.
		cp.deadline = min(cp.deadline, c.now+min(uint64(m.Position), uint64(c.cfg.LeaseTicks))+1)
	}
	return nil
}

// sendImplicitPromise broadcasts the implicit promise request.
func (c *Core) sendImplicitPromise() {
	c.camp.deadline = c.now + c.jitter()
	c.broadcast(Message{Type: MsgPromiseRequest, Proposal: c.proposal, Implicit: true})
}

// Demote gives up the campaign or the coordinator role. Writes in flight
// have an unknown outcome; the next coordinator fills them.
func (c *Core) Demote() {
	c.resetRole()
	c.dropOwnLease()
}

// resetRole drops every coordinator state.
func (c *Core) resetRole() {
	c.role = RoleFollower
	c.camp = nil
	c.w = nil
}

// lose handles a REJECT: another proposer holds a higher promise.
func (c *Core) lose(by Proposal, reason string) {
	c.lastRound = max(c.lastRound, by.Round)
	switch c.role {
	case RoleCoordinator:
		c.events = append(c.events, LostLeadership{By: by})
	case RoleCampaigning:
		c.events = append(c.events, CampaignFailed{By: by, Reason: reason})
	}
	c.resetRole()
	c.dropOwnLease()
}

// dropOwnLease forgets the lease this replica granted its own campaign or
// coordinator. Keeping it after losing would make the replica refuse every
// other candidate for LeaseTicks while it is no candidate itself: with
// candidates that all started together, nobody would ever be elected.
func (c *Core) dropOwnLease() {
	if c.leaseKnown && c.lease.Replica == c.id {
		c.leaseKnown = false
	}
}

// handlePromiseResponse tallies implicit and explicit promise answers.
func (c *Core) handlePromiseResponse(m Message) error {
	if c.role != RoleCampaigning {
		return nil
	}
	if !c.knownMember(m.From) {
		c.refuse(m.From, fmt.Sprintf("replica %d is not a member of cluster %d", m.From, c.hs.Cluster))
		return nil
	}
	cp := c.camp
	if m.Result == ResultReject {
		if c.proposal.Less(m.Proposal) || m.Reason != "" {
			c.lose(m.Proposal, m.Reason)
		}
		return nil
	}
	if m.Result != ResultAccept || m.Proposal != c.proposal {
		return nil // IGNORED: not enough voters yet; retried on tick
	}
	if m.Implicit {
		if m.Config != nil && m.Config.Cluster != 0 {
			if err := c.observeConfig(*m.Config, m.Position); err != nil {
				return err
			}
		}
		if _, ok := cp.accepted[m.From]; !ok {
			cp.acceptedOrder = append(cp.acceptedOrder, m.From)
		}
		cp.accepted[m.From] = max(cp.accepted[m.From], m.End)
		if cp.won {
			cp.fillEnd = max(cp.fillEnd, m.End)
		}
		return c.evaluateCampaign()
	}
	if !cp.won || m.Position != cp.fillReqFrom {
		return nil
	}
	if m.Begin > m.Position {
		// The responder truncated positions this replica lacks: catch up to
		// its snapshot first, then fill again.
		cp.catchTo = max(cp.catchTo, m.Begin+1)
		c.startCatchup(m.From, cp.catchTo)
		return nil
	}
	r := fillResp{end: m.End, actions: map[Position]Action{}}
	for _, a := range m.Actions {
		if a.Position >= m.Position && a.Position < m.End {
			r.actions[a.Position] = a
		}
	}
	if _, ok := cp.fillResp[m.From]; !ok {
		cp.fillOrder = append(cp.fillOrder, m.From)
	}
	cp.fillResp[m.From] = r
	return c.resolveFill()
}

// evaluateCampaign checks for a quorum of implicit promises.
func (c *Core) evaluateCampaign() error {
	cp := c.camp
	if cp == nil || cp.won {
		return nil
	}
	latest := c.latestConfig()
	if countVoters(latest, cp.acceptedOrder) < quorumSize(latest, c.cfg.Quorum) {
		return nil
	}
	cp.won = true
	c.w = newWriter()
	for _, id := range cp.acceptedOrder {
		cp.fillEnd = max(cp.fillEnd, cp.accepted[id])
	}
	if c.hs.Cluster == 0 {
		cp.fillEnd = max(cp.fillEnd, 1) // position 0 holds the first membership
	}
	cp.fillFrom = c.learnedTo
	c.startFillRound()
	return nil
}

// startFillRound sends an explicit promise request for every position not
// resolved yet.
func (c *Core) startFillRound() {
	cp := c.camp
	cp.fillFrom = max(cp.fillFrom, c.learnedTo)
	cp.deadline = c.now + c.jitter()
	if cp.fillFrom >= cp.fillEnd {
		return
	}
	cp.fillReqFrom = cp.fillFrom
	cp.fillResp = map[ReplicaID]fillResp{}
	cp.fillOrder = nil
	req := Message{Type: MsgPromiseRequest, Proposal: c.proposal, Position: cp.fillFrom, End: cp.fillEnd}
	for _, id := range c.votersFrom(cp.fillFrom) {
		req.To = id
		c.send(req)
	}
}

// votersFrom returns the voters of every membership in force at or above p,
// ascending, self included.
func (c *Core) votersFrom(p Position) []ReplicaID {
	var ids []ReplicaID
	add := func(m Membership) {
		for _, x := range m.Members {
			if x.Voter && !slices.Contains(ids, x.ID) {
				ids = append(ids, x.ID)
			}
		}
	}
	add(c.configFor(p))
	for _, x := range c.cfgs {
		if x.at >= p {
			add(x.m)
		}
	}
	add(c.latestConfig())
	slices.SortFunc(ids, cmpID)
	return ids
}

// resolveFill decides the value of each position in order, once a quorum of
// the membership in force there answered the explicit promise: a learned
// value is just learned, else the value of the highest proposal written is
// written again, else a NOP (at position 0 of a new log, the first
// membership). It stops after an EntryConfig until that is learned, since
// the membership above it depends on it.
func (c *Core) resolveFill() error {
	cp := c.camp
	if cp == nil || !cp.won || c.w == nil || cp.catchTo > c.learnedTo {
		return nil
	}
	if cp.fillFrom < c.learnedTo {
		cp.fillFrom = c.learnedTo
	}
	var run []Action
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := c.writeRun(run)
		run = nil
		return err
	}
	for cp.fillFrom < cp.fillEnd && !c.w.pendingConfig {
		p := cp.fillFrom
		if _, ok := c.ahead[p]; ok || p < c.learnedTo || c.w.inflight[p] != nil {
			if err := flush(); err != nil {
				return err
			}
			cp.fillFrom++
			continue
		}
		cfg := c.configFor(p)
		var acceptors []ReplicaID
		covered := false
		for _, id := range cp.fillOrder {
			if cp.fillResp[id].end > p {
				acceptors = append(acceptors, id)
			}
			if cp.fillResp[id].end > p || cp.fillResp[id].end < cp.fillEnd {
				covered = covered || cp.fillResp[id].end > p
			}
		}
		if countVoters(cfg, acceptors) < quorumSize(cfg, c.cfg.Quorum) {
			if err := flush(); err != nil {
				return err
			}
			if len(cp.fillOrder) > 0 && !covered && p > cp.fillReqFrom {
				c.startFillRound() // every answer stopped short (bytes): ask for the rest
			}
			return nil
		}
		var learned *Action
		var best *Action
		for _, id := range acceptors {
			a, ok := cp.fillResp[id].actions[p]
			if !ok {
				continue
			}
			if a.Learned {
				learned = &a
				break
			}
			if !a.Performed.IsZero() && (best == nil || best.Performed.Less(a.Performed)) {
				best = &a
			}
		}
		cp.fillFrom++
		switch {
		case learned != nil:
			if err := flush(); err != nil {
				return err
			}
			if err := c.learn(*learned); err != nil {
				return err
			}
			c.w.learnedOut = append(c.w.learnedOut, *learned)
			continue
		case best != nil:
			run = append(run, Action{Position: p, Entry: best.Entry})
		case p == 0 && c.hs.Cluster == 0:
			m := Membership{Cluster: c.cfg.Cluster, Members: slices.Clone(c.hs.Membership.Members)}
			run = append(run, Action{Position: p, Entry: Entry{Type: EntryConfig, Config: &m}})
		default:
			run = append(run, Action{Position: p, Entry: Entry{Type: EntryNop}})
		}
		if run[len(run)-1].Entry.Type == EntryConfig {
			if err := flush(); err != nil {
				return err
			}
			c.w.pendingConfig, c.w.configPos = true, p
		}
	}
	return flush()
}

// checkElected finishes the election once every position below fillEnd is
// learned and a quorum of the latest membership promised.
func (c *Core) checkElected() {
	cp := c.camp
	if c.role != RoleCampaigning || cp == nil || !cp.won || cp.fillFrom < cp.fillEnd || c.learnedTo < cp.fillEnd {
		return
	}
	latest := c.latestConfig()
	if countVoters(latest, cp.acceptedOrder) < quorumSize(latest, c.cfg.Quorum) {
		return
	}
	c.role = RoleCoordinator
	c.w.nextPos = max(c.w.nextPos, cp.fillEnd, c.learnedTo)
	c.camp = nil
	c.events = append(c.events, Elected{Proposal: c.proposal, Last: c.w.nextPos - 1})
	c.w.hbDue = c.now
	c.heartbeat()
}

// tickCampaign retries the pre-vote, the implicit round or the fill round.
func (c *Core) tickCampaign() {
	cp := c.camp
	if c.role != RoleCampaigning || cp == nil || c.now < cp.deadline {
		return
	}
	if cp.preVote {
		c.sendPreVote()
		return
	}
	latest := c.latestConfig()
	if !cp.won || countVoters(latest, cp.acceptedOrder) < quorumSize(latest, c.cfg.Quorum) {
		c.sendImplicitPromise()
		if !cp.won {
			return
		}
	}
	if cp.catchTo > c.learnedTo {
		cp.deadline = c.now + c.jitter()
		return
	}
	c.startFillRound()
}

// Propose writes es at the next positions, first..first+len(es)-1, without a
// promise phase. The outcome is reported by Ready.Learned (the positions are
// learned) or by LostLeadership (their outcome is unknown).
func (c *Core) Propose(es []Entry) (first Position, err error) {
	if c.role != RoleCoordinator || c.w == nil {
		return 0, ErrNotCoordinator
	}
	if len(es) == 0 {
		return c.w.nextPos, nil
	}
	if c.w.pendingConfig || c.w.inFlight(c)+len(es) > c.cfg.Window {
		return 0, ErrWindowFull
	}
	first = c.w.nextPos
	run := make([]Action, len(es))
	for i, e := range es {
		p := first + Position(i)
		switch e.Type {
		case EntryNop, EntryAppend, EntrySnapshot:
		case EntryTruncate:
			if e.To > p {
				return 0, fmt.Errorf("propose truncate to %d at position %d: %w", e.To, p, ErrInvalidEntry)
			}
		default:
			return 0, fmt.Errorf("propose entry type %d: %w", e.Type, ErrInvalidEntry)
		}
		run[i] = Action{Position: p, Entry: e}
	}
	if err := c.writeRun(run); err != nil {
		return 0, err
	}
	return first, c.drainLocalErr()
}

// ChangeMembership proposes one membership change, written as an EntryConfig
// at the next position. No position above it is written until it is learned,
// and the next change waits for it too. Promote requires the replica to have
// reported VOTING, with its learned position within Window of the
// coordinator's, in an accepting answer to this coordinator's heartbeat (so it
// has promised this coordinator's proposal) within LeaseTicks.
func (c *Core) ChangeMembership(ch MembershipChange) (Position, error) {
	if c.role != RoleCoordinator || c.w == nil {
		return 0, ErrNotCoordinator
	}
	if c.w.pendingConfig {
		return 0, ErrChangeInProgress
	}
	if ch.Type == Remove && ch.ID == c.id {
		return 0, fmt.Errorf("remove the coordinator %d itself: %w", ch.ID, ErrInvalidChange)
	}
	if ch.Type == Promote {
		pi, ok := c.w.peers[ch.ID]
		if !ok || pi.status != StatusVoting || pi.learnedTo+Position(c.cfg.Window) < c.learnedTo || c.now-pi.at > uint64(c.cfg.LeaseTicks) {
			return 0, fmt.Errorf("promote replica %d: %w", ch.ID, ErrNotCaughtUp)
		}
	}
	latest := c.latestConfig()
	m, err := ch.apply(latest, 2*c.cfg.Quorum-1)
	if err != nil {
		return 0, err
	}
	if c.w.inFlight(c)+1 > c.cfg.Window {
		return 0, ErrWindowFull
	}
	p := c.w.nextPos
	if err := c.writeRun([]Action{{Position: p, Entry: Entry{Type: EntryConfig, Config: &m}}}); err != nil {
		return 0, err
	}
	c.w.pendingConfig, c.w.configPos = true, p
	return p, c.drainLocalErr()
}

// writeRun writes a contiguous run of entries with the current proposal: the
// local replica accepts (or refuses) them at once, inside this call, so its
// vote is persisted in the same Ready as the messages that go out.
func (c *Core) writeRun(run []Action) error {
	w := c.w
	for i := range run {
		run[i].Promised, run[i].Performed = c.proposal, c.proposal
		p := run[i].Position
		w.inflight[p] = &write{e: run[i].Entry}
		w.unsent = append(w.unsent, p)
		w.nextPos = max(w.nextPos, p+1)
	}
	return c.handleWriteRequest(Message{Type: MsgWriteRequest, From: c.id, To: c.id, Proposal: c.proposal, Begin: Position(c.now), Actions: run})
}

// handleWriteResponse counts acknowledgements: a position acknowledged by a
// quorum of the membership in force there is chosen, learned locally and
// broadcast.
func (c *Core) handleWriteResponse(m Message) error {
	w := c.w
	if w == nil {
		return nil
	}
	if !c.knownMember(m.From) {
		c.refuse(m.From, fmt.Sprintf("replica %d is not a member of cluster %d", m.From, c.hs.Cluster))
		return nil
	}
	switch m.Result {
	case ResultReject:
		if c.proposal.Less(m.Proposal) {
			c.lose(m.Proposal, "write rejected")
		}
		return nil
	case ResultAccept:
	default:
		return nil
	}
	if m.Proposal != c.proposal || m.End < m.Position {
		return nil
	}
	w.ackTick[m.From] = max(w.ackTick[m.From], uint64(m.Begin))
	for p := m.Position; p < m.End; p++ {
		wr := w.inflight[p]
		if wr == nil {
			continue
		}
		if !slices.Contains(wr.acks, m.From) {
			wr.acks = append(wr.acks, m.From)
		}
		cfg := c.configFor(p)
		if countVoters(cfg, wr.acks) < quorumSize(cfg, c.cfg.Quorum) {
			continue
		}
		a := Action{Position: p, Promised: c.proposal, Performed: c.proposal, Learned: true, Entry: wr.e}
		if err := c.learn(a); err != nil {
			return err
		}
		delete(w.inflight, p)
		if c.w == nil { // learning may end the role (never today; defensive)
			return nil
		}
		w.learnedOut = append(w.learnedOut, a)
	}
	return nil
}

// heartbeat sends a heartbeat (self included) and schedules the next.
func (c *Core) heartbeat() {
	c.w.hbDue = c.now + uint64(c.cfg.HeartbeatTicks)
	c.broadcast(Message{Type: MsgHeartbeat, Proposal: c.proposal, Position: min(c.learnedTo, c.sentLearnedTo), End: c.w.nextPos, Begin: Position(c.now)})
}

// handleHeartbeatResponse renews the lease and records the peer's progress.
func (c *Core) handleHeartbeatResponse(m Message) error {
	w := c.w
	if c.role != RoleCoordinator || w == nil {
		return nil
	}
	if !c.knownMember(m.From) {
		c.refuse(m.From, fmt.Sprintf("replica %d is not a member of cluster %d", m.From, c.hs.Cluster))
		return nil
	}
	switch m.Result {
	case ResultReject:
		if c.proposal.Less(m.Proposal) {
			c.lose(m.Proposal, "heartbeat rejected")
		}
		return nil
	case ResultIgnored:
		w.peers[m.From] = peerInfo{status: m.Status, learnedTo: m.Position, at: c.now}
		return nil
	}
	if m.Proposal != c.proposal {
		return nil
	}
	w.ackTick[m.From] = max(w.ackTick[m.From], uint64(m.Begin))
	w.peers[m.From] = peerInfo{status: m.Status, learnedTo: m.Position, at: c.now}
	// A replica that stored positions this coordinator never wrote holds
	// leftovers of an earlier coordinator that were never chosen (anything
	// chosen was below the fill end): write NOPs over them so every
	// replica's log can be learned to its end.
	if m.End > w.nextPos && !w.pendingConfig {
		n := min(int(m.End-w.nextPos), c.cfg.Window-w.inFlight(c))
		if n > 0 {
			run := make([]Action, n)
			for i := range run {
				run[i] = Action{Position: w.nextPos + Position(i), Entry: Entry{Type: EntryNop}}
			}
			return c.writeRun(run)
		}
	}
	return nil
}

// tickWriter retransmits unacknowledged writes and sends heartbeats.
func (c *Core) tickWriter() {
	w := c.w
	if w == nil {
		return
	}
	ps := make([]Position, 0, len(w.inflight))
	for p, wr := range w.inflight {
		if c.now-wr.sentAt >= uint64(c.cfg.RetryTicks) && !slices.Contains(w.unsent, p) {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	c.sendWrites(ps, true)
	if c.role == RoleCoordinator && c.now >= w.hbDue {
		c.heartbeat()
	}
}

// leaseRemaining returns LeaseTicks minus the ticks since the send tick of
// the newest heartbeat or write a quorum of the latest membership
// acknowledged.
func (w *writer) leaseRemaining(c *Core) int {
	latest := c.latestConfig()
	var ticks []uint64
	for _, x := range latest.Members {
		if t, ok := w.ackTick[x.ID]; ok && x.Voter {
			ticks = append(ticks, t)
		}
	}
	q := quorumSize(latest, c.cfg.Quorum)
	if len(ticks) < q {
		return 0
	}
	slices.SortFunc(ticks, func(a, b uint64) int { return cmp.Compare(b, a) })
	return c.cfg.LeaseTicks - int(c.now-ticks[q-1])
}

// write is one position in flight.
type write struct {
	e      Entry
	acks   []ReplicaID
	sentAt uint64
}

// peerInfo is what the coordinator last heard from a replica.
type peerInfo struct {
	status    Status
	learnedTo Position
	at        uint64
}

// writer is the coordinator's write pipeline, used by the fill and after
// the election.
type writer struct {
	inflight      map[Position]*write
	nextPos       Position
	pendingConfig bool
	configPos     Position
	unsent        []Position
	learnedOut    []Action
	hbDue         uint64
	ackTick       map[ReplicaID]uint64
	peers         map[ReplicaID]peerInfo
}

func newWriter() *writer {
	return &writer{
		inflight: map[Position]*write{},
		ackTick:  map[ReplicaID]uint64{},
		peers:    map[ReplicaID]peerInfo{},
	}
}

// inFlight returns the positions written but not yet learned locally.
func (w *writer) inFlight(c *Core) int {
	if w.nextPos <= c.learnedTo {
		return 0
	}
	return int(w.nextPos - c.learnedTo)
}

// learned drops a learned position from the pipeline.
func (w *writer) learned(p Position) {
	delete(w.inflight, p)
	if w.pendingConfig && p == w.configPos {
		w.pendingConfig = false
	}
}

// hasUnsent reports whether writes or learned broadcasts wait for Ready.
func (w *writer) hasUnsent() bool {
	return w != nil && (len(w.unsent) > 0 || len(w.learnedOut) > 0)
}

// flush turns queued writes and learned actions into messages.
func (w *writer) flush(c *Core) {
	if w == nil {
		return
	}
	ps := slices.Clone(w.unsent)
	w.unsent = w.unsent[:0]
	slices.Sort(ps)
	ps = slices.Compact(ps)
	c.sendWrites(ps, false)
	if len(w.learnedOut) > 0 {
		slices.SortFunc(w.learnedOut, func(a, b Action) int { return cmp.Compare(a.Position, b.Position) })
		for _, chunk := range chunkActions(w.learnedOut, c.cfg.MaxBatchBytes) {
			c.send(Message{Type: MsgLearned, Proposal: c.proposal, Actions: chunk})
		}
		w.learnedOut = nil
	}
}

// sendWrites sends the positions ps (ascending) to every voter of the
// membership in force there that has not acknowledged them, as contiguous
// runs bounded by MaxBatchBytes.
func (c *Core) sendWrites(ps []Position, retry bool) {
	w := c.w
	if len(ps) == 0 {
		return
	}
	for _, id := range c.votersFrom(ps[0]) {
		if id == c.id {
			continue
		}
		var run []Action
		emit := func() {
			for _, chunk := range chunkActions(run, c.cfg.MaxBatchBytes) {
				c.send(Message{Type: MsgWriteRequest, To: id, Proposal: c.proposal, Begin: Position(c.now), Actions: chunk})
			}
			run = nil
		}
		for _, p := range ps {
			wr := w.inflight[p]
			if wr == nil || !c.configFor(p).isVoter(id) || (retry && slices.Contains(wr.acks, id)) {
				continue
			}
			if len(run) > 0 && run[len(run)-1].Position+1 != p {
				emit()
			}
			run = append(run, Action{Position: p, Promised: c.proposal, Performed: c.proposal, Entry: wr.e})
		}
		emit()
	}
	for _, p := range ps {
		if wr := w.inflight[p]; wr != nil {
			wr.sentAt = c.now
		}
	}
}

// chunkActions splits as into chunks of at most maxBytes (at least one
// action each).
func chunkActions(as []Action, maxBytes int) [][]Action {
	var out [][]Action
	start, size := 0, 0
	for i, a := range as {
		s := actionSize(a)
		if i > start && size+s > maxBytes {
			out = append(out, as[start:i:i])
			start, size = i, 0
		}
		size += s
	}
	if start < len(as) {
		out = append(out, as[start:len(as):len(as)])
	}
	return out
}
