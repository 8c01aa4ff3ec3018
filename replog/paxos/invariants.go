package paxos

import (
	"fmt"
	"slices"
)

// checkInvariants panics if the core's in-memory state is inconsistent. It
// runs after every call when built with the invariants tag.
func (c *Core) checkInvariants() {
	if !invariantsEnabled {
		return
	}
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("paxos: replica %d: broken invariant: ", c.id) + fmt.Sprintf(format, args...))
	}
	if c.learnedTo < c.hs.Begin || c.next < c.learnedTo {
		fail("begin %d, learned-to %d, next %d out of order", c.hs.Begin, c.learnedTo, c.next)
	}
	for p := range c.ahead {
		if p <= c.learnedTo {
			fail("learned-ahead position %d at or below learned-to %d", p, c.learnedTo)
		}
	}
	if !slices.IsSortedFunc(c.cfgs, func(a, b configAt) int { return int(a.at) - int(b.at) }) {
		fail("configs out of order")
	}
	if c.hs.Membership.Cluster != 0 && c.hs.ConfigAt >= c.learnedTo {
		fail("membership in force set at %d, not below learned-to %d", c.hs.ConfigAt, c.learnedTo)
	}
	if (c.role == RoleCoordinator) != (c.camp == nil && c.w != nil) && c.role == RoleCoordinator {
		fail("coordinator without a write pipeline")
	}
	if c.role == RoleFollower && (c.camp != nil || c.w != nil) {
		fail("follower with coordinator state")
	}
	if c.w != nil {
		for p := range c.w.inflight {
			if p >= c.w.nextPos {
				fail("position %d in flight at or above the next position %d", p, c.w.nextPos)
			}
		}
		if c.role == RoleCoordinator && int(c.w.nextPos-c.learnedTo) > c.cfg.Window+c.cfg.Window {
			fail("%d positions beyond learned-to, window %d", c.w.nextPos-c.learnedTo, c.cfg.Window)
		}
	}
	if c.hs.Status == StatusVoting && c.rec != nil {
		fail("VOTING with recovery state")
	}
	savedBytes := 0
	for _, a := range c.saved {
		savedBytes += len(a.Entry.Data)
	}
	if savedBytes != c.savedBytes {
		fail("saved actions hold %d entry bytes, counted %d", savedBytes, c.savedBytes)
	}
	for p, a := range c.saved {
		if _, pending := c.unstable[p]; pending {
			// A newer version waits in a Ready whose save may be in flight
			// (the driver steps heartbeats meanwhile): storage holds the
			// one or the other until Advance.
			continue
		}
		st, ok, err := c.st.Action(p)
		if err != nil {
			continue // storage errors are the driver's to report
		}
		if !ok || st.Promised != a.Promised || st.Performed != a.Performed || st.Learned != a.Learned || !sameEntry(st.Entry, a.Entry) {
			fail("saved action at %d is %+v, storage holds %+v (%v)", p, a, st, ok)
		}
	}
}
