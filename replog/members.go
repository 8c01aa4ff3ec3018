package replog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/replog/paxos"
)

// This file holds the node-level membership API: the whitelist an operator
// changes at runtime (online reconfiguration, MESOS-683) and the view of
// every member's progress that "regent members list" and "regent status"
// print. The changes themselves go through consensus: the coordinator's
// reconciliation (see [Node]) turns a whitelist change into one EntryConfig
// at a time.

// ErrMembershipRefused marks a membership request the node refuses: the
// change would break a rule (more than 2*quorum-1 voters, no voter left,
// removing the leader), another change is still in progress, or the target is
// unknown. The error's text says which, and what to do.
var ErrMembershipRefused = errors.New("replog: membership change refused")

// Dialer is implemented by a [Transport] that can dial peer addresses it was
// not configured with (replog/peer's does). The node uses it to reach a
// master added at runtime and every member of the log's membership.
type Dialer interface {
	// AddPeer starts dialing addr; an address already dialed is left alone.
	// It does not block on the network and is safe for concurrent use.
	AddPeer(addr string) error
}

// MemberStatus is one replica as this node sees it: a member of the log's
// latest membership, or a master of the whitelist that is not a member yet.
type MemberStatus struct {
	// ID is the replica's ReplicaID; 0 for a listed master never heard
	// from.
	ID   paxos.ReplicaID
	Addr string
	// Member and Voter tell its place in the latest learned membership;
	// Listed whether its address is in the whitelist.
	Member, Voter, Listed bool
	// Self is this node; Leader the coordinator this node knows of.
	Self, Leader bool
	// Status is the replica's persisted status as last reported to the
	// coordinator (its own, for Self); 0 when unknown (ask the leader).
	Status paxos.Status
	// LearnedTo is one past the last position it learned in order, and
	// Lag how many positions that is behind the coordinator's; both are
	// known on the coordinator (and for Self) only.
	LearnedTo paxos.Position
	Lag       uint64
	// Heard is how long ago the coordinator last heard from it; zero when
	// unknown.
	Heard time.Duration
	// Connected reports whether this node's transport has a stream to it;
	// Refusal is the last handshake refusal on the way there, if any (e.g.
	// "refused by peer: … is not in the masters list …").
	Connected bool
	Refusal   string
	// Known reports whether Status, LearnedTo, Lag and Heard are known.
	Known bool
}

// whitelist returns the whitelist in force. The slice is never modified.
func (n *Node) whitelist() []string { return *n.masters.Load() }

// Masters returns the whitelist in force: Config.Masters, or the list set
// at runtime by [Node.AddMaster] and [Node.RemoveMaster], which lasts until
// the process restarts.
func (n *Node) Masters() []string { return slices.Clone(n.whitelist()) }

// allowed reports whether a peer at addr may connect: it is listed, or it is
// the address of a member of the latest learned membership.
func (n *Node) allowed(addr string) bool {
	if slices.Contains(n.whitelist(), addr) {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.ContainsFunc(n.status.Membership.Members, func(m paxos.Member) bool { return m.Addr == addr })
}

// dialMembers makes the transport dial every member of m it does not dial
// yet, so a master added at runtime by another coordinator is reached by
// every replica. Driver goroutine.
func (n *Node) dialMembers(m paxos.Membership) {
	d, ok := n.tr.(Dialer)
	if !ok {
		return
	}
	for _, x := range m.Members {
		if x.ID == n.id || x.Addr == "" {
			continue
		}
		if err := d.AddPeer(x.Addr); err != nil {
			n.log.Warn("cannot dial member", "replica", x.ID, "peer", x.Addr, "error", err)
		}
	}
}

// AddMaster adds the peer address addr to the whitelist of this node, which
// must be the coordinator, and starts dialing it. The coordinator then adds
// the replica that answers there as a non-voter, and promotes it once it has
// caught up, one EntryConfig at a time; [Node.Members] shows each step. The
// runtime whitelist lasts until this process restarts: the operator also
// lists addr in every master's configuration.
//
// It refuses, wrapping [ErrMembershipRefused], an address already listed, a
// change while another is in progress, and a list longer than 2*Quorum-1
// (more voters than the quorum allows). On a node that is not the
// coordinator it returns an error wrapping [ErrNotLeader].
func (n *Node) AddMaster(ctx context.Context, addr string) error {
	if err := checkPeerAddr(addr); err != nil {
		return fmt.Errorf("add master: %w", err)
	}
	var err error
	if derr := n.do(ctx, "add master", func() { err = n.addMaster(addr) }); derr != nil {
		return derr
	}
	return err
}

func (n *Node) addMaster(addr string) error {
	if _, err := n.changeAllowed("add master " + addr); err != nil {
		return err
	}
	masters := n.whitelist()
	if slices.Contains(masters, addr) {
		return fmt.Errorf("add master %s: already in the masters list %v: %w", addr, masters, ErrMembershipRefused)
	}
	if maxVoters := 2*n.cfg.Quorum - 1; len(masters)+1 > maxVoters {
		return fmt.Errorf("add master %s: %d masters would exceed 2*quorum-1 = %d voters for quorum %d "+
			"(two quorums could then miss each other); raise the quorum first: restart every master, one at a time, "+
			"with quorum = %d: %w", addr, len(masters)+1, maxVoters, n.cfg.Quorum, (len(masters)+3)/2, ErrMembershipRefused)
	}
	next := append(slices.Clone(masters), addr)
	n.masters.Store(&next)
	delete(n.evict, addr)
	n.log.Info("master added to the whitelist at runtime", "peer", addr, "masters", strings.Join(next, ","))
	if d, ok := n.tr.(Dialer); ok {
		if err := d.AddPeer(addr); err != nil {
			return fmt.Errorf("add master %s: dial: %w", addr, err)
		}
	}
	return nil
}

// RemoveMaster removes a master from the whitelist of this node, which must
// be the coordinator: target is its ReplicaID (decimal) or its peer address.
// The coordinator then removes its replica from the membership (an
// EntryConfig); from then on it is refused and never counted in a quorum. The
// operator stops that master for good and removes it from every master's
// configuration. It returns the address removed.
//
// It refuses, wrapping [ErrMembershipRefused], an unknown target, the
// coordinator itself (stop it: another master takes over, then remove it
// there), the last voter, and a change while another is in progress. On a
// node that is not the coordinator it returns an error wrapping
// [ErrNotLeader].
func (n *Node) RemoveMaster(ctx context.Context, target string) (string, error) {
	var addr string
	var err error
	if derr := n.do(ctx, "remove master", func() { addr, err = n.removeMaster(target) }); derr != nil {
		return "", derr
	}
	return addr, err
}

func (n *Node) removeMaster(target string) (string, error) {
	cs, err := n.changeAllowed("remove master " + target)
	if err != nil {
		return "", err
	}
	masters := n.whitelist()
	var m paxos.Member
	found := false
	if id, perr := strconv.ParseUint(target, 10, 64); perr == nil {
		m, found = findMember(cs.Membership, func(x paxos.Member) bool { return uint64(x.ID) == id })
	} else {
		m, found = findMember(cs.Membership, func(x paxos.Member) bool { return x.Addr == target })
		if !found && slices.Contains(masters, target) {
			m, found = paxos.Member{Addr: target}, true
		}
	}
	if !found {
		return "", fmt.Errorf("remove master %s: no member or listed master with that replica id or address: %w", target, ErrMembershipRefused)
	}
	if m.ID == n.id || m.Addr == n.cfg.Addr {
		return "", fmt.Errorf("remove master %s: replica %d is the leader; stop that master first "+
			"(another takes over) and remove it there: %w", target, n.id, ErrMembershipRefused)
	}
	if m.Voter && voters(cs.Membership) <= 1 {
		return "", fmt.Errorf("remove master %s: it is the last voter: %w", target, ErrMembershipRefused)
	}
	next := slices.DeleteFunc(slices.Clone(masters), func(a string) bool { return a == m.Addr })
	n.masters.Store(&next)
	if n.evict == nil {
		n.evict = map[string]bool{}
	}
	n.evict[m.Addr] = true
	n.log.Info("master removed from the whitelist at runtime", "replica", m.ID, "peer", m.Addr, "masters", strings.Join(next, ","))
	return m.Addr, nil
}

// changeAllowed checks that this node coordinates and that no membership
// change is in progress (the membership already matches the whitelist).
// Driver goroutine.
func (n *Node) changeAllowed(op string) (paxos.CoreStatus, error) {
	cs := n.core.Status()
	if cs.Role != paxos.RoleCoordinator {
		return cs, fmt.Errorf("%s: %w", op, ErrNotLeader)
	}
	if cs.Membership.Cluster == 0 {
		return cs, fmt.Errorf("%s: the log is not initialised yet: %w", op, ErrMembershipRefused)
	}
	var peers []Peer
	if n.tr != nil {
		peers = n.tr.Peers()
	}
	if ch, pending := n.nextChange(cs, peers); pending {
		return cs, fmt.Errorf("%s: a membership change is in progress (next: %s replica %d %s); "+
			"wait until \"regent members list\" shows it done: %w", op, changeName(ch.Type), ch.ID, ch.Addr, ErrMembershipRefused)
	}
	return cs, nil
}

func findMember(m paxos.Membership, f func(paxos.Member) bool) (paxos.Member, bool) {
	i := slices.IndexFunc(m.Members, f)
	if i < 0 {
		return paxos.Member{}, false
	}
	return m.Members[i], true
}

func voters(m paxos.Membership) int {
	v := 0
	for _, x := range m.Members {
		if x.Voter {
			v++
		}
	}
	return v
}

// checkPeerAddr checks that addr looks like host:port (replog may not
// import net: the appliance checks it properly before asking).
func checkPeerAddr(addr string) error {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 || i == len(addr)-1 {
		return fmt.Errorf("peer address %q is not host:port: %w", addr, ErrMembershipRefused)
	}
	if p, err := strconv.ParseUint(addr[i+1:], 10, 16); err != nil || p == 0 {
		return fmt.Errorf("peer address %q has no valid port: %w", addr, ErrMembershipRefused)
	}
	return nil
}

// Members returns every member of the latest learned membership and every
// listed master that is not a member yet, sorted by address. On the
// coordinator each member's status, learned position and lag come from its
// answers to heartbeats; elsewhere only this node's own are known.
func (n *Node) Members(ctx context.Context) ([]MemberStatus, error) {
	var out []MemberStatus
	err := n.do(ctx, "members", func() {
		cs := n.core.Status()
		var peers []Peer
		if n.tr != nil {
			peers = n.tr.Peers()
		}
		out = n.members(cs, n.core.Progress(), peers)
	})
	return out, err
}

// members builds the member view. Driver goroutine.
func (n *Node) members(cs paxos.CoreStatus, prog []paxos.Progress, peers []Peer) []MemberStatus {
	masters := n.whitelist()
	connected := func(id paxos.ReplicaID, addr string) bool {
		return slices.ContainsFunc(peers, func(p Peer) bool {
			return p.Connected && ((id != 0 && p.ID == id) || (id == 0 && p.Addr == addr))
		})
	}
	refusal := func(addr string) string {
		if i := slices.IndexFunc(peers, func(p Peer) bool { return p.Addr == addr && !p.Connected }); i >= 0 {
			return peers[i].Refusal
		}
		return ""
	}
	var out []MemberStatus
	for _, m := range cs.Membership.Members {
		ms := MemberStatus{
			ID: m.ID, Addr: m.Addr, Member: true, Voter: m.Voter,
			Listed:    slices.Contains(masters, m.Addr),
			Self:      m.ID == n.id,
			Leader:    m.ID == cs.Leader,
			Connected: m.ID == n.id || connected(m.ID, ""),
		}
		if !ms.Connected {
			ms.Refusal = refusal(m.Addr)
		}
		n.fillProgress(&ms, cs, prog)
		out = append(out, ms)
	}
	if !cs.Member {
		ms := MemberStatus{ID: n.id, Addr: n.cfg.Addr, Listed: slices.Contains(masters, n.cfg.Addr), Self: true, Connected: true}
		n.fillProgress(&ms, cs, prog)
		out = append(out, ms)
	}
	for _, a := range masters {
		if slices.ContainsFunc(out, func(ms MemberStatus) bool { return ms.Addr == a }) {
			continue
		}
		ms := MemberStatus{Addr: a, Listed: true, Connected: connected(0, a)}
		if !ms.Connected {
			ms.Refusal = refusal(a)
		}
		if i := slices.IndexFunc(peers, func(p Peer) bool { return p.Addr == a }); i >= 0 {
			ms.ID = peers[i].ID
		}
		n.fillProgress(&ms, cs, prog)
		out = append(out, ms)
	}
	slices.SortFunc(out, func(a, b MemberStatus) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// fillProgress sets what is known of ms's status and learned position.
func (n *Node) fillProgress(ms *MemberStatus, cs paxos.CoreStatus, prog []paxos.Progress) {
	lag := func(p paxos.Position) uint64 {
		if cs.LearnedTo > p {
			return uint64(cs.LearnedTo - p)
		}
		return 0
	}
	if ms.Self {
		ms.Status, ms.LearnedTo, ms.Known = cs.Status, cs.LearnedTo, true
		return
	}
	if ms.ID == 0 {
		return
	}
	if i := slices.IndexFunc(prog, func(p paxos.Progress) bool { return p.Replica == ms.ID }); i >= 0 {
		p := prog[i]
		ms.Status, ms.LearnedTo, ms.Lag, ms.Known = p.Status, p.LearnedTo, lag(p.LearnedTo), true
		ms.Heard = time.Duration(p.Ago) * n.cfg.TickInterval
	}
}
