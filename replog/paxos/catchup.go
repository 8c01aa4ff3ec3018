package paxos

import "fmt"

// catchup is the state of bulk catch-up: learned actions fetched in batches
// from one peer (the coordinator when one is known) instead of one Paxos
// round per position. Catch-up never runs Paxos itself, so it can never
// demote a working coordinator: positions nobody has learned yet are left to
// the coordinator's learned broadcasts (or to the next coordinator's fill).
type catchup struct {
	active   bool
	peer     ReplicaID
	to       Position // catch up every position below it
	deadline uint64
}

// startCatchup asks peer for the learned actions from learnedTo up to to.
func (c *Core) startCatchup(peer ReplicaID, to Position) {
	if peer == 0 || peer == c.id || c.learnedTo >= to {
		return
	}
	c.cu.to = max(c.cu.to, to)
	if c.cu.active && c.now < c.cu.deadline {
		return
	}
	c.cu.active = true
	c.cu.peer = peer
	c.requestCatchup()
}

// requestCatchup sends the next catch-up request.
func (c *Core) requestCatchup() {
	c.cu.deadline = c.now + c.jitter()
	c.send(Message{Type: MsgCatchupRequest, To: c.cu.peer, Position: c.learnedTo, End: c.cu.to})
}

// maybeCatchupFromLeader starts catching up from the coordinator when it
// reports learned positions this replica lacks.
func (c *Core) maybeCatchupFromLeader() {
	if c.leaderKnown && c.leaderLearnedTo > c.learnedTo && c.role == RoleFollower {
		c.startCatchup(c.leader, c.leaderLearnedTo)
	}
}

// tickCatchup retries a catch-up whose answer did not come.
func (c *Core) tickCatchup() {
	if c.cu.active && c.now >= c.cu.deadline {
		c.cu.active = false
		if c.learnedTo < c.cu.to {
			peer := c.cu.peer
			if c.leaderKnown && c.now-c.leaderAt < uint64(c.cfg.LeaseTicks) && c.leader != c.id {
				peer = c.leader
			} else if c.rec != nil {
				peer = c.rec.pickPeer(c, peer)
			}
			c.startCatchup(peer, c.cu.to)
		}
	}
	c.maybeCatchupFromLeader()
}

// handleCatchupResponse stores a batch of learned actions. A responder whose
// log was truncated above learnedTo starts the batch at its Begin (the
// snapshot): the local log is truncated to it first.
func (c *Core) handleCatchupResponse(m Message) error {
	if m.Result != ResultAccept {
		if c.cu.active && m.From == c.cu.peer {
			c.cu.active = false
		}
		return nil
	}
	before := c.learnedTo
	if len(m.Actions) > 0 && m.Actions[0].Position > c.learnedTo {
		if m.Actions[0].Position != m.Begin || m.Begin < c.hs.Begin || m.Config == nil || m.Config.Cluster == 0 {
			return nil // a gap the responder cannot explain: ignore
		}
		if c.hs.Cluster != 0 && m.Config.Cluster != c.hs.Cluster {
			return nil
		}
		// Jump to the responder's Begin (its snapshot). Its membership is
		// the one in force at Begin if it lies below Begin; otherwise the
		// one in force between Begin and it is not known here until
		// learnedTo passes it.
		if m.Position < m.Begin {
			c.setBaseConfig(*m.Config, m.Position)
		} else {
			c.addConfig(m.Position, *m.Config)
			c.cfgUnknown, c.cfgUnknownTo = true, m.Position
		}
		c.truncate(m.Begin)
	}
	for _, a := range m.Actions {
		if !a.Learned {
			break
		}
		if err := c.learn(a); err != nil {
			return fmt.Errorf("catch-up: %w", err)
		}
	}
	if m.Config != nil && m.Config.Cluster != 0 {
		if err := c.observeConfig(*m.Config, m.Position); err != nil {
			return err
		}
	}
	if !c.cu.active || m.From != c.cu.peer {
		return nil
	}
	c.cu.active = false
	if c.learnedTo < c.cu.to && c.learnedTo > before && c.learnedTo < m.End {
		c.cu.active = true
		c.requestCatchup()
	}
	return nil
}

// observeConfig takes note of a peer's membership (the one in force at its
// learnedTo). A learned value is chosen, so it is stored as learned here too,
// or, below learnedTo, becomes the local HardState's membership if newer.
func (c *Core) observeConfig(m Membership, at Position) error {
	if m.Cluster == 0 || (c.hs.Cluster != 0 && c.hs.Cluster != m.Cluster) {
		return nil
	}
	if at < c.learnedTo {
		c.setBaseConfig(m, at)
		return nil
	}
	mm := m.clone()
	return c.learn(Action{Position: at, Learned: true, Entry: Entry{Type: EntryConfig, Config: &mm}})
}
