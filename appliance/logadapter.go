package appliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regent-ha/regent/master"
	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// nodeLog adapts a *replog.Node to the master's Log: positions become
// uint64, replog's errors are wrapped with the master's sentinels (the
// original stays in the chain), and the node's status is summarised as the
// master needs it.
type nodeLog struct {
	node   *replog.Node
	quorum int           // configured --quorum
	lease  time.Duration // the coordinator lease the log grants
}

var _ master.Log = (*nodeLog)(nil)

// mapErr wraps err with the master's sentinel for the condition it names.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replog.ErrCorrupt):
		return fmt.Errorf("%w: %w", master.ErrCorrupt, err)
	case errors.Is(err, replog.ErrLostLeadership):
		return fmt.Errorf("%w: %w", master.ErrLostLeadership, err)
	case errors.Is(err, replog.ErrNotLeader):
		return fmt.Errorf("%w: %w", master.ErrNotLeader, err)
	case errors.Is(err, replog.ErrClosed):
		return fmt.Errorf("%w: %w", master.ErrClosed, err)
	}
	return err
}

// Elect implements master.Log.
func (l *nodeLog) Elect(ctx context.Context) (uint64, error) {
	last, err := l.node.Elect(ctx)
	if err != nil {
		if errors.Is(err, replog.ErrNotLeader) {
			return 0, fmt.Errorf("%w: %w", master.ErrNotElected, err)
		}
		return 0, mapErr(err)
	}
	return uint64(last), nil
}

// Append implements master.Log.
func (l *nodeLog) Append(ctx context.Context, data []byte) (uint64, error) {
	p, err := l.node.Append(ctx, data)
	return uint64(p), mapErr(err)
}

// AppendSnapshot implements master.Log.
func (l *nodeLog) AppendSnapshot(ctx context.Context, data []byte) (uint64, error) {
	p, err := l.node.AppendSnapshot(ctx, data)
	return uint64(p), mapErr(err)
}

// Truncate implements master.Log.
func (l *nodeLog) Truncate(ctx context.Context, to uint64) error {
	return mapErr(l.node.Truncate(ctx, paxos.Position(to)))
}

// Read implements master.Log.
func (l *nodeLog) Read(ctx context.Context, from uint64) ([]master.Entry, error) {
	es, err := l.node.Read(ctx, paxos.Position(from))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]master.Entry, 0, len(es))
	for _, e := range es {
		k := master.EntryAppend
		if e.Type == paxos.EntrySnapshot {
			k = master.EntrySnapshot
		}
		out = append(out, master.Entry{Position: uint64(e.Position), Kind: k, Data: e.Data})
	}
	return out, nil
}

// Status implements master.Log.
func (l *nodeLog) Status() master.LogStatus {
	st := l.node.Status()
	s := master.LogStatus{
		Coordinator: st.Role == paxos.RoleCoordinator,
		Replica:     strings.ToUpper(strings.TrimPrefix(st.ReplicaStatus.String(), "Status")),
		Begin:       uint64(st.Begin),
	}
	if st.LearnedTo > 0 {
		s.End = uint64(st.LearnedTo - 1)
	}
	if cu := st.Catchup; cu.Active {
		s.Catchup = master.LogCatchup{Active: true, From: uint64(cu.From), Target: uint64(cu.Target), LearnedTo: uint64(cu.LearnedTo), Rate: cu.Rate, ETA: cu.ETA}
	}
	s.Catchup.LearnedTotal = st.Catchup.LearnedTotal
	switch {
	case s.Coordinator:
		s.Lease = st.LeaseRemaining
	case st.Leader != 0:
		// The replica heard from a live coordinator within the lease: it
		// will refuse other campaigns until the lease lapses.
		s.Lease = l.lease
	}
	connected := map[string]bool{}
	for _, p := range st.Peers {
		if p.Connected {
			connected[p.Addr] = true
		}
	}
	for _, m := range st.Membership.Members {
		if !m.Voter {
			continue
		}
		s.Members++
		if m.ID == st.Replica || connected[m.Addr] {
			s.Reachable++
		}
	}
	// The log's own count: a majority, and at least min(--quorum, voters).
	s.Quorum = max(st.Quorum, s.Members/2+1, 1)
	if s.Members == 0 {
		// Not initialised yet: what initialisation will need.
		s.Quorum = l.quorum
		s.Reachable = 1 + len(connected)
	}
	return s
}
