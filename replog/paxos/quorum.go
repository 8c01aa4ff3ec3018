package paxos

import (
	"fmt"
	"slices"
)

// ChangeType is the kind of a MembershipChange.
type ChangeType uint8

// Membership change types. Changes are made one at a time.
const (
	AddNonVoter ChangeType = iota + 1 // add a replica that learns but does not vote
	Promote                           // make a caught-up non-voter a voter
	Remove                            // remove a replica (voter or not)
)

// MembershipChange is one change to the membership, proposed by the
// coordinator with [Core.ChangeMembership].
type MembershipChange struct {
	Type ChangeType
	ID   ReplicaID
	Addr string // AddNonVoter: the replica's advertised peer address
}

// member returns the member with id, if any.
func (m Membership) member(id ReplicaID) (Member, bool) {
	for _, x := range m.Members {
		if x.ID == id {
			return x, true
		}
	}
	return Member{}, false
}

// isMember reports whether id is in m.
func (m Membership) isMember(id ReplicaID) bool {
	_, ok := m.member(id)
	return ok
}

// isVoter reports whether id is a voter of m.
func (m Membership) isVoter(id ReplicaID) bool {
	x, ok := m.member(id)
	return ok && x.Voter
}

// voters returns the number of voters of m.
func (m Membership) voters() int {
	n := 0
	for _, x := range m.Members {
		if x.Voter {
			n++
		}
	}
	return n
}

// clone returns a deep copy of m.
func (m Membership) clone() Membership {
	return Membership{Cluster: m.Cluster, Members: slices.Clone(m.Members)}
}

// quorumSize is the number of voters of m whose answers make a quorum: a
// majority of the voters, and at least min(floor, voters). Before the log's
// first EntryConfig (Cluster zero: the initialisation set) every voter must
// answer, so that two replicas that initialised with different views of the
// ensemble can never both write position 0.
func quorumSize(m Membership, floor int) int {
	v := m.voters()
	if m.Cluster == 0 {
		return max(v, 1)
	}
	q := v/2 + 1
	if f := min(floor, v); f > q {
		q = f
	}
	return q
}

// countVoters counts the voters of m in ids (each counted once).
func countVoters(m Membership, ids []ReplicaID) int {
	n := 0
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			continue
		}
		if m.isVoter(id) {
			n++
		}
	}
	return n
}

// apply returns m with ch applied, or an error if ch does not apply.
func (ch MembershipChange) apply(m Membership, maxVoters int) (Membership, error) {
	out := m.clone()
	switch ch.Type {
	case AddNonVoter:
		if ch.ID == 0 || m.isMember(ch.ID) {
			return m, fmt.Errorf("add replica %d: %w", ch.ID, ErrInvalidChange)
		}
		out.Members = append(out.Members, Member{ID: ch.ID, Addr: ch.Addr})
		slices.SortFunc(out.Members, func(a, b Member) int {
			switch {
			case a.ID < b.ID:
				return -1
			case a.ID > b.ID:
				return 1
			}
			return 0
		})
	case Promote:
		x, ok := m.member(ch.ID)
		if !ok || x.Voter {
			return m, fmt.Errorf("promote replica %d: %w", ch.ID, ErrInvalidChange)
		}
		if m.voters()+1 > maxVoters {
			return m, fmt.Errorf("promote replica %d to voter %d of at most %d: %w", ch.ID, m.voters()+1, maxVoters, ErrTooManyVoters)
		}
		for i := range out.Members {
			if out.Members[i].ID == ch.ID {
				out.Members[i].Voter = true
			}
		}
	case Remove:
		x, ok := m.member(ch.ID)
		if !ok {
			return m, fmt.Errorf("remove replica %d: %w", ch.ID, ErrInvalidChange)
		}
		if x.Voter && m.voters() == 1 {
			return m, fmt.Errorf("remove the last voter %d: %w", ch.ID, ErrInvalidChange)
		}
		out.Members = slices.DeleteFunc(out.Members, func(y Member) bool { return y.ID == ch.ID })
	default:
		return m, fmt.Errorf("change type %d: %w", ch.Type, ErrInvalidChange)
	}
	return out, nil
}
