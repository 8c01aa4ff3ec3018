package paxos

import "fmt"

// This file holds the acceptor: the answers to promise, write, heartbeat,
// recover and catch-up requests, and learning.

// answers reports whether the local replica answers promise, write and
// heartbeat requests: a replica that knows it is not a member of its
// cluster stays silent (the coordinator would only refuse its answer).
func (c *Core) answers() bool {
	return c.hs.Cluster == 0 || c.hs.Membership.isMember(c.id)
}

// handlePromiseRequest answers an implicit or explicit promise request.
func (c *Core) handlePromiseRequest(m Message) error {
	if !c.answers() {
		return nil
	}
	reply := Message{Type: MsgPromiseResponse, To: m.From, Proposal: m.Proposal, Implicit: m.Implicit, Position: m.Position, End: m.End, Status: c.hs.Status}
	if c.hs.Status != StatusVoting {
		reply.Result = ResultIgnored
		c.send(reply)
		return nil
	}
	if m.Implicit {
		return c.implicitPromise(m, reply)
	}
	return c.explicitPromise(m, reply)
}

// implicitPromise promises m.Proposal for every position: no write below it
// is accepted anywhere afterwards (writes are checked against the implicit
// promise too). Equal proposals are accepted again: proposals are unique per
// replica, so an equal one is a retransmission from the same proposer.
func (c *Core) implicitPromise(m Message, reply Message) error {
	if res, by, reason := c.promiseVerdict(m.Proposal); res != ResultAccept {
		reply.Result, reply.Reason = res, reason
		if res == ResultReject {
			reply.Proposal = by
		}
		c.send(reply)
		return nil
	}
	if c.hs.Promised != m.Proposal {
		c.hs.Promised = m.Proposal
		c.hsDirty, c.mustSync = true, true
	}
	// A promise is a lease too: refusing other proposers for a while stops
	// two candidates from duelling.
	c.noteLease(m.Proposal)
	reply.Result = ResultAccept
	reply.Begin = c.hs.Begin
	reply.End = c.next
	c.attachConfig(&reply)
	c.send(reply)
	return nil
}

// promiseVerdict applies the rule of the implicit promise to proposal p and
// changes nothing: ResultAccept if a VOTING replica would promise p now;
// otherwise ResultIgnored or ResultReject with the proposal to report and
// the reason. The implicit promise and the pre-vote share it, so a pre-vote
// is granted exactly when the promise would be.
func (c *Core) promiseVerdict(p Proposal) (Result, Proposal, string) {
	switch {
	case c.leaseLive() && c.lease.Replica == 0:
		// The start-up lease of a restarted replica (Config.StartWithLease):
		// it cannot vote yet, but it knows of no coordinator either. IGNORED,
		// not REJECT: a candidate that the other voters accept must not lose
		// its campaign because this replica just restarted (the killed
		// leader, typically, which its supervisor restarts within
		// milliseconds).
		return ResultIgnored, Proposal{}, fmt.Sprintf("replica %d restarted and waits out a lease it may have renewed", c.id)
	case c.leaseLive() && c.lease.Replica != p.Replica:
		return ResultReject, maxProposal(c.hs.Promised, c.lease), fmt.Sprintf("replica %d holds a lease from coordinator %d", c.id, c.lease.Replica)
	case p.Less(c.hs.Promised):
		return ResultReject, c.hs.Promised, ""
	}
	return ResultAccept, p, ""
}

// handlePreVoteRequest answers whether this replica would promise m.Proposal
// now (Raft's pre-vote, §9.6 of Ongaro's thesis), by the rule of the implicit
// promise. The answer changes nothing: no promise, no lease, nothing to
// persist, so it may be sent at once and a refused candidate leaves no trace
// that could make this replica refuse the live coordinator.
func (c *Core) handlePreVoteRequest(m Message) {
	if !c.answers() {
		return
	}
	reply := Message{Type: MsgPreVoteResponse, To: m.From, Proposal: m.Proposal, Begin: m.Begin, Status: c.hs.Status}
	if c.hs.Status != StatusVoting {
		reply.Result = ResultIgnored
		c.send(reply)
		return
	}
	res, by, reason := c.promiseVerdict(m.Proposal)
	reply.Result, reply.Reason = res, reason
	if res == ResultReject {
		reply.Proposal = by
	}
	if res != ResultAccept && c.leaseLive() {
		// The ticks until the lease lapses here: the candidate asks again
		// then, not a whole retry period later.
		reply.Position = Position(uint64(c.cfg.LeaseTicks) - (c.now - c.leaseAt))
	}
	c.send(reply)
}

// explicitPromise promises m.Proposal for positions [m.Position, m.End) and
// returns the actions stored there (the value and proposal of the last write,
// or a learned value). A learned position needs no promise. The answer covers
// [m.Position, reply.End): it stops early once MaxBatchBytes of actions are
// included.
func (c *Core) explicitPromise(m Message, reply Message) error {
	from := max(m.Position, c.hs.Begin)
	var found []Action
	var toPromise []Action
	size := 0
	end := from
	for p := from; p < m.End; p++ {
		a, ok, err := c.getAction(p)
		if err != nil {
			return fmt.Errorf("explicit promise: %w", err)
		}
		end = p + 1
		if ok && a.Learned {
			found = append(found, a)
			size += actionSize(a)
		} else {
			eff := c.hs.Promised
			if ok {
				eff = maxProposal(eff, a.Promised)
			}
			if m.Proposal.Less(eff) {
				reply.Result = ResultReject
				reply.Proposal = eff
				c.send(reply)
				return nil
			}
			if !ok {
				a = Action{Position: p}
			}
			if !a.Performed.IsZero() {
				found = append(found, a)
				size += actionSize(a)
			}
			if eff.Less(m.Proposal) {
				a.Promised = m.Proposal
				toPromise = append(toPromise, a)
			}
		}
		if size >= c.cfg.MaxBatchBytes {
			break
		}
	}
	for _, a := range toPromise {
		c.putAction(a)
		c.mustSync = true // the answer reports this promise
	}
	reply.Result = ResultAccept
	reply.Begin = c.hs.Begin
	reply.End = max(end, from)
	reply.Actions = found
	c.send(reply)
	return nil
}

// handleWriteRequest accepts a contiguous batch of writes if none is below
// the promise in force at its position: max(action.Promised, the implicit
// promise). The promise is checked first, at every position, learned and
// truncated ones included, so a deposed coordinator is always rejected. An
// accepted write raises the position's promise to its proposal. A learned
// position is never overwritten: it is acknowledged if the write carries the
// learned value (a current coordinator writes nothing else there), and the
// whole batch goes unanswered otherwise. A truncated position is
// acknowledged: it was learned, and a coordinator holding the promise can
// only be writing the value chosen there.
func (c *Core) handleWriteRequest(m Message) error {
	if !c.answers() || len(m.Actions) == 0 {
		return nil
	}
	first := m.Actions[0].Position
	last := m.Actions[len(m.Actions)-1].Position
	if last < first || Position(len(m.Actions)) != last-first+1 {
		return nil // not contiguous: malformed
	}
	reply := Message{Type: MsgWriteResponse, To: m.From, Proposal: m.Proposal, Position: first, End: last + 1, Begin: m.Begin, Status: c.hs.Status}
	if c.hs.Status != StatusVoting {
		reply.Result = ResultIgnored
		c.send(reply)
		return nil
	}
	var puts []Action
	for i, w := range m.Actions {
		if w.Position != first+Position(i) {
			return nil
		}
		eff := c.hs.Promised
		var a Action
		ok := false
		if w.Position >= c.hs.Begin {
			var err error
			a, ok, err = c.getAction(w.Position)
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			if ok {
				eff = maxProposal(eff, a.Promised)
			}
		}
		if m.Proposal.Less(eff) {
			reply.Result = ResultReject
			reply.Proposal = eff
			c.send(reply)
			return nil
		}
		if w.Position < c.hs.Begin {
			continue
		}
		if ok && a.Learned {
			if !sameEntry(a.Entry, w.Entry) {
				return nil
			}
			continue
		}
		puts = append(puts, Action{Position: w.Position, Promised: m.Proposal, Performed: m.Proposal, Entry: w.Entry})
	}
	for _, a := range puts {
		c.putAction(a)
		// The answer (to self included) reports this accept.
		c.mustSync = true
	}
	c.promise(m.Proposal)
	c.noteLease(m.Proposal)
	reply.Result = ResultAccept
	if m.From == c.id && len(puts) > 0 {
		// The coordinator's own vote counts only once the Ready holding it
		// is saved (Advance): its write requests leave meanwhile.
		c.held = append(c.held, heldMessage{m: reply, seq: c.seq})
		return nil
	}
	c.send(reply)
	return nil
}

// handleLearned stores learned actions, in any status.
func (c *Core) handleLearned(m Message) error {
	for _, a := range m.Actions {
		if !a.Learned {
			continue
		}
		if err := c.learn(a); err != nil {
			return fmt.Errorf("learned: %w", err)
		}
	}
	return nil
}

// handleHeartbeat renews the coordinator's lease on this replica and answers
// with this replica's status and learned position, so the coordinator can
// renew its lease and judge whether a non-voter has caught up.
func (c *Core) handleHeartbeat(m Message) {
	if !m.Proposal.Less(c.hs.Promised) {
		c.leader, c.leaderProposal, c.leaderAt, c.leaderKnown = m.From, m.Proposal, c.now, true
		c.leaderLearnedTo = max(c.leaderLearnedTo, m.Position)
	}
	if !c.answers() {
		c.maybeCatchupFromLeader()
		return
	}
	reply := Message{Type: MsgHeartbeatResponse, To: m.From, Proposal: m.Proposal, Begin: m.Begin, Position: c.learnedTo, End: c.next, Status: c.hs.Status}
	switch {
	case c.hs.Status != StatusVoting:
		reply.Result = ResultIgnored
	case m.Proposal.Less(c.hs.Promised):
		reply.Result = ResultReject
		reply.Proposal = c.hs.Promised
	default:
		c.promise(m.Proposal)
		c.noteLease(m.Proposal)
		reply.Result = ResultAccept
	}
	c.send(reply)
	c.maybeCatchupFromLeader()
}

// promise raises the implicit promise to p. Accepting a coordinator's write
// or heartbeat promises its proposal, as an acceptor of classic Paxos does on
// accept: a replica promoted to voter has therefore promised the proposal of
// the coordinator that promoted it, and a deposed coordinator that learned
// the new membership cannot count it.
func (c *Core) promise(p Proposal) {
	if c.hs.Promised.Less(p) {
		c.hs.Promised = p
		c.hsDirty, c.mustSync = true, true
	}
}

// noteLease records that this replica heard from proposer p now.
func (c *Core) noteLease(p Proposal) {
	if c.leaseKnown && p.Less(c.lease) && c.leaseLive() {
		return
	}
	c.lease, c.leaseAt, c.leaseKnown = p, c.now, true
}

// handleRecoverRequest answers in every status: status, and when VOTING the
// range [begin, end) of the local log, plus the latest learned membership (or
// this replica's own identity before it knows one).
func (c *Core) handleRecoverRequest(m Message) {
	reply := Message{Type: MsgRecoverResponse, To: m.From, Proposal: m.Proposal, Status: c.hs.Status}
	if c.hs.Status == StatusVoting {
		reply.Begin = c.hs.Begin
		reply.End = c.next
	}
	c.attachConfig(&reply)
	if len(reply.Config.Members) == 0 {
		reply.Config.Members = []Member{{ID: c.id, Addr: c.cfg.Addr}}
	}
	c.send(reply)
}

// attachConfig puts the latest learned membership and its position into m.
func (c *Core) attachConfig(m *Message) {
	cm := c.hs.Membership.clone()
	cm.Cluster = c.hs.Cluster
	if c.hs.Membership.Cluster == 0 {
		cm.Cluster = 0
	}
	m.Config = &cm
	m.Position = c.hs.ConfigAt
}

// handleCatchupRequest answers with a batch of learned actions from
// [m.Position, m.End), starting at Begin if m.Position is truncated (Begin
// holds the snapshot), contiguous and bounded by MaxBatchBytes.
func (c *Core) handleCatchupRequest(m Message) error {
	reply := Message{Type: MsgCatchupResponse, To: m.From, Status: c.hs.Status, Begin: c.hs.Begin, End: c.learnedTo}
	if c.hs.Status != StatusVoting {
		reply.Result = ResultIgnored
		c.send(reply)
		return nil
	}
	from := max(m.Position, c.hs.Begin)
	to := min(m.End, c.learnedTo)
	if from < to {
		stored, err := c.st.Actions(from, to, c.cfg.MaxBatchBytes)
		if err != nil {
			return fmt.Errorf("catch-up: read actions [%d, %d): %w", from, to, err)
		}
		// Storage answers what was synced; the unstable overlay holds newer
		// versions (a position learned since). Past the last position storage
		// returned, only the overlay is known.
		byPos := make(map[Position]Action, len(stored))
		last := from
		for _, a := range stored {
			byPos[a.Position] = a
			last = max(last, a.Position)
		}
		size := 0
		for p := from; p < to && size < c.cfg.MaxBatchBytes; p++ {
			a, ok := byPos[p]
			if u, in := c.unstable[p]; in {
				a, ok = u.a, true
			} else if p > last && len(stored) > 0 {
				ok = false
			}
			a = c.markBelow(a)
			if !ok || !a.Learned {
				break
			}
			reply.Actions = append(reply.Actions, a)
			size += actionSize(a)
		}
	}
	reply.Result = ResultAccept
	c.attachConfig(&reply)
	c.send(reply)
	return nil
}

// maxProposal returns the higher of a and b.
func maxProposal(a, b Proposal) Proposal {
	if a.Less(b) {
		return b
	}
	return a
}

// actionSize estimates the encoded size of a.
func actionSize(a Action) int {
	n := 48 + len(a.Entry.Data)
	if a.Entry.Config != nil {
		n += 16 + 24*len(a.Entry.Config.Members)
		for _, m := range a.Entry.Config.Members {
			n += len(m.Addr)
		}
	}
	return n
}
