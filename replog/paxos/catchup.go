package paxos

import (
	"fmt"
	"math"
)

// catchupWindow is the number of catch-up requests kept in flight, each over
// a disjoint range of about one batch (MaxBatchBytes).
const catchupWindow = 8

// catchup is the state of bulk catch-up: learned actions fetched in batches
// from one peer (the coordinator when one is known) instead of one Paxos
// round per position. Catch-up never runs Paxos itself, so it can never
// demote a working coordinator: positions nobody has learned yet are left to
// the coordinator's learned broadcasts (or to the next coordinator's fill).
//
// Up to catchupWindow requests over disjoint ranges are in flight at once:
// the first request learns how many positions one answer holds (span), the
// window is then filled with ranges of that size from sent upward, but never
// from catchupWindow spans above learnedTo or further: while the lowest
// range is not answered the window waits, so what is learned out of order
// (Core.ahead, held in memory until learnedTo passes it) stays within one
// window. Answers above learnedTo are learned out of order and persisted
// without a sync, like any learned mark. An answer that matches no range in
// flight (a duplicate, or one to a request from before a restart) is
// learned and changes nothing else. When no answer matched a range in
// flight for catchupTimeout, every range is dropped and catch-up starts
// again from learnedTo, possibly from another peer, skipping what it
// learned out of order.
type catchup struct {
	active bool
	peer   ReplicaID
	to     Position // catch up every position below it
	// from is learnedTo when this catch-up began: when it was started while
	// learnedTo had reached to. Restarts (a timeout, a refusal, another
	// peer) and a target raised on the way keep it, so that progress is
	// counted over the whole catch-up.
	from     Position
	deadline uint64                // restart from learnedTo when no progress by then
	sent     Position              // every range below it was requested
	span     Position              // positions one answer holds; 0 until known
	inflight map[Position]Position // requested ranges: start -> end
}

// startCatchup asks peer for the learned actions from learnedTo up to to.
func (c *Core) startCatchup(peer ReplicaID, to Position) {
	if peer == 0 || peer == c.id || c.learnedTo >= to {
		return
	}
	if c.learnedTo >= c.cu.to {
		c.cu.from = c.learnedTo // the previous catch-up, if any, is over
	}
	c.cu.to = max(c.cu.to, to)
	if c.cu.active && c.now < c.cu.deadline {
		c.fillCatchupWindow()
		return
	}
	c.cu.active = true
	c.cu.peer = peer
	c.cu.deadline = c.now + c.catchupTimeout()
	c.cu.sent = c.learnedTo
	clear(c.cu.inflight)
	c.fillCatchupWindow()
}

// Catchup returns the progress of the catch-up in progress, or the zero
// value when none is.
func (c *Core) Catchup() CatchupStatus {
	if !c.cu.active || c.learnedTo >= c.cu.to {
		return CatchupStatus{}
	}
	return CatchupStatus{
		Active:    true,
		Peer:      c.cu.peer,
		From:      c.cu.from,
		Target:    c.cu.to,
		LearnedTo: c.learnedTo,
		Requests:  len(c.cu.inflight),
	}
}

// catchupTimeout is how long catch-up waits for an answer before it starts
// again: catchupWindow retry periods. A responder answers the requests of a
// window one after another, each a batch of up to MaxBatchBytes to read and
// send, and the replica's own saves of the answers may stall it for many
// ticks at once (which it then counts all together): one retry period
// without an answer is no sign of a lost request, and starting again sent
// the window again while the first one was still being answered.
func (c *Core) catchupTimeout() uint64 { return catchupWindow * c.jitter() }

// fillCatchupWindow sends requests for the next ranges until catchupWindow
// are in flight, every range below cu.to was requested, or the next range
// would start catchupWindow spans above learnedTo. While the span is
// unknown a single request covers the rest. Positions learned out of order
// are not requested again.
func (c *Core) fillCatchupWindow() {
	if c.cu.inflight == nil {
		c.cu.inflight = map[Position]Position{}
	}
	c.cu.sent = max(c.cu.sent, c.learnedTo)
	for c.cu.sent < c.cu.to && len(c.cu.inflight) < catchupWindow {
		if c.cu.span == 0 && len(c.cu.inflight) > 0 {
			return
		}
		for c.cu.sent < c.cu.to {
			if _, ok := c.ahead[c.cu.sent]; !ok {
				break
			}
			c.cu.sent++
		}
		if c.cu.sent >= c.cu.to || c.cu.span > 0 && c.cu.sent >= c.learnedTo+catchupWindow*c.cu.span {
			return
		}
		end := c.cu.to
		if c.cu.span > 0 {
			end = min(end, c.cu.sent+c.cu.span)
		}
		c.requestCatchup(c.cu.sent, end)
		c.cu.sent = end
	}
}

// requestCatchup sends a catch-up request for [from, to).
func (c *Core) requestCatchup(from, to Position) {
	c.cu.inflight[from] = to
	c.send(Message{Type: MsgCatchupRequest, To: c.cu.peer, Position: from, End: to})
}

// maybeCatchupFromLeader starts catching up from the coordinator when it
// reports learned positions this replica lacks.
func (c *Core) maybeCatchupFromLeader() {
	if c.leaderKnown && c.leaderLearnedTo > c.learnedTo && c.role == RoleFollower {
		c.startCatchup(c.leader, c.leaderLearnedTo)
	}
}

// tickCatchup restarts a catch-up that made no progress for catchupTimeout.
func (c *Core) tickCatchup() {
	if c.cu.active && c.now >= c.cu.deadline {
		c.cu.active = false
		clear(c.cu.inflight)
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
// snapshot): the local log is truncated to it first. A batch that starts
// above learnedTo anywhere else answers a pipelined request; its actions
// are learned out of order.
func (c *Core) handleCatchupResponse(m Message) error {
	if m.Result != ResultAccept {
		if c.cu.active && m.From == c.cu.peer {
			c.cu.active = false
			clear(c.cu.inflight)
		}
		return nil
	}
	before := c.learnedTo
	if len(m.Actions) > 0 && m.Actions[0].Position > c.learnedTo && m.Actions[0].Position == m.Begin && m.Begin > c.hs.Begin {
		if m.Config == nil || m.Config.Cluster == 0 {
			return nil // a jump the responder cannot explain: ignore
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
	if err := c.learnAnswer(m.Actions); err != nil {
		return fmt.Errorf("catch-up: %w", err)
	}
	if m.Config != nil && m.Config.Cluster != 0 {
		if err := c.observeConfig(*m.Config, m.Position); err != nil {
			return err
		}
	}
	if !c.cu.active || m.From != c.cu.peer {
		return nil
	}
	if c.catchupAnswered(m) || c.learnedTo > before {
		c.cu.deadline = c.now + c.catchupTimeout()
	}
	if c.learnedTo >= c.cu.to {
		c.cu.active = false
		clear(c.cu.inflight)
		return nil
	}
	if len(c.cu.inflight) == 0 && c.learnedTo > before {
		// Every range was answered, but a gap is left (a short answer):
		// request again from learnedTo.
		c.cu.sent = c.learnedTo
	}
	c.fillCatchupWindow()
	return nil
}

// learnAnswer learns the leading learned actions of as, a catch-up
// answer (contiguous, ascending). What is stored at their positions is read
// with one range read, not once per position: answers that arrived out of
// order leave gaps below next, and a read per position there cost more
// than the rest of a catch-up.
func (c *Core) learnAnswer(as []Action) error {
	n := 0
	for n < len(as) && as[n].Learned {
		n++
	}
	as = as[:n]
	if n == 0 {
		return nil
	}
	// Positions at or above next hold nothing in storage; ones stored since
	// the read (by this very loop) are in unstable, which is looked at first.
	from, to := max(as[0].Position, c.hs.Begin, c.learnedTo), min(as[n-1].Position+1, c.next)
	var stored []Action
	if from < to {
		var err error
		if stored, err = c.st.Actions(from, to, math.MaxInt); err != nil {
			return fmt.Errorf("read actions [%d, %d): %w", from, to, err)
		}
	}
	for _, a := range as {
		p := a.Position
		if p < c.hs.Begin {
			continue // truncated, maybe by an action of this answer
		}
		if p < c.learnedTo {
			// Learned already (a duplicate answer): learn would read it
			// back only to compare.
			continue
		}
		for len(stored) > 0 && stored[0].Position < p {
			stored = stored[1:]
		}
		var ex Action
		ok := false
		if u, in := c.unstable[p]; in {
			ex, ok = u.a, true
		} else if sa, in := c.saved[p]; in {
			ex, ok = sa, true
		} else if len(stored) > 0 && stored[0].Position == p {
			ex, ok = stored[0], true
		}
		c.learnOver(a, c.markBelow(ex), ok)
	}
	return nil
}

// catchupAnswered removes the range m answers from the window, and
// re-requests the rest of a range the answer did not cover; an answer cut
// short by MaxBatchBytes (or the first one) also sets the span. An empty
// answer drops every range the responder has not learned (above m.End). An
// empty answer from a responder truncated above learnedTo (a range below
// its Begin) is replaced by one request from learnedTo past its Begin,
// answered with its snapshot. It reports whether m answered a range in
// flight; one that answers none changes nothing.
func (c *Core) catchupAnswered(m Message) bool {
	if len(m.Actions) == 0 && m.Begin > c.learnedTo {
		if e, ok := c.cu.inflight[c.learnedTo]; ok && e > m.Begin {
			return false // already asked
		}
		clear(c.cu.inflight)
		end := max(c.cu.to, m.Begin+1)
		c.requestCatchup(c.learnedTo, end)
		c.cu.sent = end
		return true
	}
	if len(m.Actions) == 0 {
		for s := range c.cu.inflight {
			if s >= m.End {
				delete(c.cu.inflight, s)
			}
		}
		return false
	}
	s := m.Actions[0].Position
	e, ok := c.cu.inflight[s]
	if !ok && s == m.Begin {
		// A snapshot jump answers the range it was asked for across
		// Begin; every range below Begin is truncated there.
		for s2, e2 := range c.cu.inflight {
			if s2 < s && e2 > s {
				ok = true
			}
		}
		if ok {
			for s2, e2 := range c.cu.inflight {
				if s2 < s {
					e = max(e, e2)
					delete(c.cu.inflight, s2)
				}
			}
		}
	}
	if !ok {
		return false
	}
	delete(c.cu.inflight, s)
	got := m.Actions[len(m.Actions)-1].Position + 1
	if got < min(e, m.End) {
		size := 0
		for _, a := range m.Actions {
			size += actionSize(a)
		}
		if size >= c.cfg.MaxBatchBytes || c.cu.span == 0 {
			// Cut short by MaxBatchBytes (the responder stops once its
			// batch reaches it): one answer holds this many positions.
			c.cu.span = max(1, got-s)
		}
		if e == c.cu.sent {
			// The last range requested (the first one covers everything
			// until the span is known): leave the rest to the window.
			c.cu.sent = got
		} else {
			c.requestCatchup(got, e)
		}
	}
	return true
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
