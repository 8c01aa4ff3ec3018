package paxos

import "slices"

// Progress is what a coordinator last heard from one replica in an answer
// to its heartbeats: the replica's status and learned position.
type Progress struct {
	Replica   ReplicaID
	Status    Status
	LearnedTo Position // one past the last position the replica learned in order
	Ago       uint64   // ticks since the answer
}

// Progress returns, on a coordinator, what it last heard from every other
// replica that answered its heartbeats, sorted by ReplicaID; nil on a
// replica that is not coordinating. Replicas that never answered are absent.
func (c *Core) Progress() []Progress {
	if c.role != RoleCoordinator || c.w == nil {
		return nil
	}
	out := make([]Progress, 0, len(c.w.peers))
	for id, pi := range c.w.peers {
		if id == c.id {
			continue
		}
		out = append(out, Progress{Replica: id, Status: pi.status, LearnedTo: pi.learnedTo, Ago: c.now - pi.at})
	}
	slices.SortFunc(out, func(a, b Progress) int { return cmpID(a.Replica, b.Replica) })
	return out
}
