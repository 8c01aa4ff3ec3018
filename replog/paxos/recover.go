package paxos

import (
	"slices"
)

// recovery is the state of a replica that is not VOTING: recover rounds
// (a.9), two-phase auto-initialisation, and then catch-up up to the end a
// quorum of VOTING voters reported.
type recovery struct {
	round     uint64
	deadline  uint64
	replies   map[ReplicaID]recoverReply
	order     []ReplicaID // reply senders in arrival order (deterministic iteration)
	targetSet bool
	target    Position // RECOVERING: done once learnedTo reaches it
	peers     []ReplicaID
	reported  bool
}

// recoverReply is one answer to a recover request.
type recoverReply struct {
	status     Status
	begin, end Position
	self       Member // the responder's identity (address)
	init       Membership
}

// startRecovery starts recover rounds.
func (c *Core) startRecovery() {
	c.rec = &recovery{replies: map[ReplicaID]recoverReply{}}
	c.recoverRound()
}

// recoverRound broadcasts a recover request (self included).
func (c *Core) recoverRound() {
	r := c.rec
	r.round++
	clear(r.replies)
	r.order = r.order[:0]
	r.deadline = c.now + c.jitter()
	c.broadcast(Message{
		Type:     MsgRecoverRequest,
		Proposal: Proposal{Round: r.round, Replica: c.id},
		Status:   c.hs.Status,
		Config:   &Membership{Members: []Member{{ID: c.id, Addr: c.cfg.Addr}}},
	})
}

// tickRecovery starts another round when the last one timed out without a
// decision.
func (c *Core) tickRecovery() {
	if c.rec != nil && !c.rec.targetSet && c.now >= c.rec.deadline {
		c.recoverRound()
	}
}

// handleRecoverResponse tallies an answer of the current round.
func (c *Core) handleRecoverResponse(m Message) {
	r := c.rec
	if r == nil || m.Proposal != (Proposal{Round: r.round, Replica: c.id}) {
		return
	}
	rep := recoverReply{status: m.Status, begin: m.Begin, end: m.End}
	if m.Config != nil {
		if m.Config.Cluster != 0 {
			if err := c.observeConfig(*m.Config, m.Position); err != nil {
				c.pendingErr = err
				return
			}
		} else if x, ok := m.Config.member(m.From); ok {
			rep.self = x
			if m.Status == StatusVoting && len(m.Config.Members) > 0 {
				rep.init = m.Config.clone()
			}
		}
	}
	if _, ok := r.replies[m.From]; !ok {
		r.order = append(r.order, m.From)
	}
	r.replies[m.From] = rep
	c.evaluateRecovery()
}

// evaluateRecovery decides, from the replies so far, to start catching up
// (a quorum of VOTING voters answered), to move on in auto-initialisation,
// or to keep waiting.
func (c *Core) evaluateRecovery() {
	r := c.rec
	if r == nil {
		return
	}
	if r.targetSet {
		c.checkRecoveryDone()
		return
	}
	if latest := c.latestConfig(); latest.Cluster != 0 {
		var ids []ReplicaID
		var end Position
		var best ReplicaID
		for _, id := range r.order {
			rep := r.replies[id]
			if rep.status != StatusVoting || !latest.isVoter(id) {
				continue
			}
			ids = append(ids, id)
			if rep.end > end || best == 0 {
				end, best = max(end, rep.end), id
			}
		}
		if len(ids) < quorumSize(latest, c.cfg.Quorum) {
			return
		}
		r.targetSet = true
		r.target = end
		r.peers = ids
		c.setStatus(StatusRecovering)
		c.checkRecoveryDone()
		if c.rec != nil {
			c.startCatchup(best, end)
		}
		return
	}
	var empty, starting, voting int
	var init Membership
	for _, id := range r.order {
		switch rep := r.replies[id]; rep.status {
		case StatusEmpty:
			empty++
		case StatusStarting:
			starting++
		case StatusVoting:
			voting++
			if len(rep.init.Members) > 0 && len(init.Members) == 0 {
				init = rep.init
			}
		}
	}
	n := c.cfg.Expected
	switch c.hs.Status {
	case StatusEmpty:
		if c.cfg.AutoInitialize && empty+starting >= n {
			c.setStatus(StatusStarting)
			c.recoverRound()
		} else if !c.cfg.AutoInitialize && empty >= n && !r.reported {
			r.reported = true
			c.events = append(c.events, NotInitialized{Empty: empty})
		}
	case StatusStarting:
		if starting+voting < n {
			return
		}
		if len(init.Members) == 0 {
			for _, id := range r.order {
				rep := r.replies[id]
				if rep.status == StatusStarting || rep.status == StatusVoting {
					init.Members = append(init.Members, Member{ID: id, Addr: rep.self.Addr, Voter: true})
				}
			}
			slices.SortFunc(init.Members, func(a, b Member) int { return cmpID(a.ID, b.ID) })
		}
		if !init.isMember(c.id) || init.voters() > 2*c.cfg.Quorum-1 {
			return
		}
		c.hs.Membership = init.clone()
		c.hs.Membership.Cluster = 0
		c.hs.ConfigAt = 0
		c.hsDirty, c.mustSync = true, true
		c.setStatus(StatusVoting)
		c.events = append(c.events, Joined{Begin: c.hs.Begin, End: c.next})
		c.rec = nil
	}
}

// checkRecoveryDone makes a RECOVERING replica VOTING once it has learned
// every position below the end a quorum reported.
func (c *Core) checkRecoveryDone() {
	r := c.rec
	if r == nil || !r.targetSet || c.learnedTo < r.target {
		return
	}
	c.setStatus(StatusVoting)
	c.events = append(c.events, Joined{Begin: c.hs.Begin, End: c.next})
	c.rec = nil
}

// pickPeer returns the VOTING responder after prev, round robin.
func (r *recovery) pickPeer(c *Core, prev ReplicaID) ReplicaID {
	if len(r.peers) == 0 {
		return prev
	}
	i := slices.Index(r.peers, prev)
	return r.peers[(i+1)%len(r.peers)]
}

// cmpID orders replica IDs.
func cmpID(a, b ReplicaID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
