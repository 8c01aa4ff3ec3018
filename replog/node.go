package replog

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog/paxos"
)

// Entry is one learned log entry carrying application data: an append or a
// snapshot. No-ops, truncations and membership changes are not published.
type Entry struct {
	Position paxos.Position
	Type     paxos.EntryType // paxos.EntryAppend or paxos.EntrySnapshot
	Data     []byte          // must not be modified
}

// Status is a snapshot of a [Node]'s state.
type Status struct {
	Replica paxos.ReplicaID
	Cluster paxos.ClusterID
	Addr    string
	// Role is follower, campaigning or coordinator; ReplicaStatus is the
	// persisted EMPTY / STARTING / RECOVERING / VOTING.
	Role          paxos.Role
	ReplicaStatus paxos.Status
	// Begin is the first position not truncated; End one past the highest
	// stored position; LearnedTo one past the last position learned (and
	// published) in order.
	Begin, End, LearnedTo paxos.Position
	// Membership is the latest learned membership; Voters the number of its
	// voters, Quorum how many of them make a quorum, Reachable how many this
	// node reaches (itself included, if a voter).
	Membership paxos.Membership
	Voter      bool
	Voters     int
	Quorum     int
	Reachable  int
	// LeaseRemaining is, on the coordinator, how long its lease still lasts
	// after the clock-drift margin; zero otherwise.
	LeaseRemaining time.Duration
	// Leader is the coordinator this replica heard from within the lease (or
	// itself), 0 if none; LeaderAddr its address from the membership.
	Leader     paxos.ReplicaID
	LeaderAddr string
	// InFlight is the number of positions written but not yet learned.
	InFlight int
	// Peers are the transport's peers.
	Peers []Peer
	// Refused counts messages this replica refused; RefusedByPeers counts
	// refusals it received, the last one's reason in LastRefusal.
	Refused, RefusedByPeers uint64
	LastRefusal             string
	// InboxDropped counts incoming messages dropped because the inbox was
	// full.
	InboxDropped uint64
	// Catchup is the progress of the replica's catch-up from a VOTING
	// replica; its LearnedTotal counts every catch-up since New.
	Catchup CatchupProgress
	// Err is the fatal error that stopped the node, if any.
	Err error
}

// Node is one replica of the replicated log, with its coordinator when
// elected. It drives the core (package paxos) from one goroutine, Run's,
// which for every Ready sends the coordinator's write requests (Ready.Early),
// persists (one Save, synced when Ready.MustSync), sends the other messages,
// publishes learned entries and advances, in that order — except that a
// batch of learned marks alone is sent and published before its save (see
// the package doc). The Save itself runs on a saver goroutine; while it is
// in flight the driver keeps ticking and steps heartbeats and their answers
// only, so that a slow disk does not cost the leader its lease (the package
// doc, "A slow save does not stop the lease").
//
// Membership policy: while coordinating, the node compares the log's
// membership with Config.Masters (or the list set at runtime, members.go)
// every ReconcileTicks and proposes one change at a time: a member whose
// address is no longer listed and that is not connected (or that an operator
// removed at runtime), or whose address a different replica now answers on
// (a wiped replica), is removed; a listed
// peer not in the membership is added as a non-voter; a non-voter is
// promoted once it has caught up. Peers not listed are refused at the
// transport's handshake by [Node.Allow].
//
// All methods are safe for concurrent use. Append, AppendSnapshot, Truncate,
// Read and Elect block; a caller's ctx cancels only its own wait.
type Node struct {
	cfg  Config
	log  hclog.Logger
	st   Storage
	core *paxos.Core // driver goroutine only
	// catchup follows the core's catch-up for Status and the log; driver
	// goroutine only.
	catchup *catchupProgress

	id      paxos.ReplicaID
	cluster atomic.Uint64
	// savedLearnedTo is the learned watermark (HardState.LearnedTo) of the
	// last hard state saved: below it a stored action holds the chosen
	// value even without its learned mark (readStored).
	savedLearnedTo atomic.Uint64
	// masters is the whitelist in force: Config.Masters, or the list an
	// operator set at runtime (see members.go). Read by Allow from the
	// transport's goroutines.
	masters atomic.Pointer[[]string]

	inbox      chan inMsg
	inboxBytes atomic.Int64 // entry bytes of the messages in inbox (and in deferred)
	dropped    atomic.Uint64
	propc      chan *waiter
	ctrlc      chan func()

	stop      chan struct{} // closed by Close
	stopOnce  sync.Once
	done      chan struct{} // closed when Run returns
	running   atomic.Bool
	runExited atomic.Bool

	// The saver goroutine runs each Save the driver hands it on saveReq and
	// answers on saveDone, so that the driver keeps the lease alive while
	// a save is slow (awaitSave).
	saveReq  chan Batch
	saveDone chan error

	// Driver-goroutine state.
	tr    Transport
	tickC <-chan time.Time // Run's ticker
	// later are the Readies taken while a save was in flight, in order;
	// their batches are saved, and their other messages sent, after it.
	later []paxos.Ready
	// deferred are the messages that came in while a save was in flight
	// and that wait for it: every one but heartbeats and their answers.
	deferred []inMsg
	// durablePromised and durableStatus are the promise and the status of
	// the last synced hard state: what an answer sent before the pending
	// saves may rely on.
	durablePromised paxos.Proposal
	durableStatus   paxos.Status
	queue           []*waiter
	inflight        map[paxos.Position]*waiter
	elect           *electWaiter
	ticks           uint64
	tickStart       time.Time // when Run began: tick n is due at tickStart + n·TickInterval
	lastChange      string
	// evict holds the addresses removed at runtime (RemoveMaster): their
	// members are removed even while connected (members.go).
	evict map[string]bool
	// testAfterEarlyPublish, if set (tests only, before Run), runs after a
	// batch of learned marks was published early, before its save.
	testAfterEarlyPublish func()
	// testOnStatus, if set (tests only), sees every status the driver
	// publishes.
	testOnStatus atomic.Pointer[func(Status)]

	mu        sync.Mutex // guards what follows
	status    Status
	statusAt  time.Time      // when status was taken
	pub       []Entry        // published entries not yet read past
	pubTo     paxos.Position // every learned position below it is published
	pubBytes  int
	pubNotify chan struct{} // closed and replaced at each publication
	// holding: entries from holdFrom on were published before their
	// learned marks were saved, and stay in pub until the save is done.
	holding     bool
	holdFrom    paxos.Position
	err         error // fatal
	lastRefusal string
}

// inMsg is an incoming message and when it came in: the driver steps it at
// the tick it arrived in, so that time the driver spent elsewhere is not
// counted against the lease it renews.
type inMsg struct {
	m  paxos.Message
	at time.Time
}

type result struct {
	pos paxos.Position
	err error
}

// waiter is one Append, AppendSnapshot or Truncate.
type waiter struct {
	entry paxos.Entry
	pos   paxos.Position
	done  chan result // size 1: the driver never blocks on it
}

type electWaiter struct {
	done    chan result // size 1
	last    paxos.Position
	elected bool
}

// New builds a node over st: it reads the replica's hard state (drawing a new
// ReplicaID for an empty store) and builds the core. It starts no goroutine;
// Step may be called at once (messages wait in the inbox until Run).
func New(cfg Config, st Storage) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	cfg = cfg.withDefaults()
	hs, err := st.InitialState()
	if err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	id := hs.Replica
	if id == 0 {
		id = randomID(cfg)
	}
	core, err := paxos.New(paxos.Config{
		Replica:        id,
		Addr:           cfg.Addr,
		Cluster:        paxos.ClusterID(randomID(cfg)),
		Quorum:         cfg.Quorum,
		AutoInitialize: cfg.AutoInitialize,
		Expected:       len(cfg.Masters),
		Rand:           cfg.Rand,
		HeartbeatTicks: cfg.HeartbeatTicks,
		LeaseTicks:     cfg.LeaseTicks,
		StartWithLease: true,
		RetryTicks:     cfg.RetryTicks,
		Window:         cfg.Window,
		MaxBatchBytes:  cfg.MaxBatchBytes,
		Applied:        cfg.Applied,
	}, st)
	if err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger.Named("replog"),
		st:        st,
		core:      core,
		id:        id,
		inbox:     make(chan inMsg, cfg.InboxSize), // bounded inbox, sized by config
		saveReq:   make(chan Batch),
		saveDone:  make(chan error, 1),
		propc:     make(chan *waiter),
		ctrlc:     make(chan func()),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		inflight:  make(map[paxos.Position]*waiter),
		pubNotify: make(chan struct{}),
		pubTo:     cfg.Applied,
	}
	n.catchup = newCatchupProgress(n.log)
	n.cluster.Store(uint64(hs.Cluster))
	n.savedLearnedTo.Store(uint64(hs.LearnedTo))
	n.durablePromised, n.durableStatus = hs.Promised, hs.Status
	masters := slices.Clone(cfg.Masters)
	n.masters.Store(&masters)
	n.refreshStatus()
	return n, nil
}

// randomID draws a non-zero 64-bit ID, from crypto/rand when it works.
func randomID(cfg Config) paxos.ReplicaID {
	var b [8]byte
	for {
		v := uint64(0)
		if _, err := crand.Read(b[:]); err == nil {
			v = binary.LittleEndian.Uint64(b[:])
		} else {
			v = cfg.Rand.Uint64()
		}
		if v != 0 {
			return paxos.ReplicaID(v)
		}
	}
}

// ID returns this replica's ReplicaID.
func (n *Node) ID() paxos.ReplicaID { return n.id }

// Self returns this replica's ClusterID (0 until the log is initialised) and
// ReplicaID, for the transport's handshake.
func (n *Node) Self() (paxos.ClusterID, paxos.ReplicaID) {
	return paxos.ClusterID(n.cluster.Load()), n.id
}

// Allow is the transport's admission check: a peer may connect only from an
// address in the whitelist (Config.Masters, or the list set at runtime with
// [Node.AddMaster] and [Node.RemoveMaster]) or from the address of a member
// of the log's latest membership (a master the coordinator added at runtime).
func (n *Node) Allow(_ paxos.ClusterID, id paxos.ReplicaID, addr string) error {
	if n.allowed(addr) {
		return nil
	}
	return fmt.Errorf("peer %s (replica %d) is not in the masters list of %s; "+
		"to add a master, list its peer address in master.masters on every master and restart them one at a time, "+
		"or run \"regent members add %s\" against the leader",
		addr, id, n.cfg.Addr, addr)
}

// Step hands an incoming message to the node. It never blocks: when the
// inbox is full (Config.InboxSize messages or Config.InboxBytes bytes of
// entries) the message is dropped and counted (Paxos tolerates loss). The
// node owns m afterwards.
func (n *Node) Step(m paxos.Message) {
	size := int64(messageBytes(m))
	// One message is always let in, however large, so that a large
	// catch-up batch cannot be refused forever.
	if size > 0 && n.inboxBytes.Load() > 0 && n.inboxBytes.Load()+size > int64(n.cfg.InboxBytes) {
		n.dropped.Add(1)
		return
	}
	n.inboxBytes.Add(size)
	select {
	case n.inbox <- inMsg{m: m, at: time.Now()}:
	default:
		n.inboxBytes.Add(-size)
		n.dropped.Add(1)
	}
}

// messageBytes is the entry payload a message carries.
func messageBytes(m paxos.Message) int {
	size := 0
	for i := range m.Actions {
		size += len(m.Actions[i].Entry.Data)
	}
	return size
}

// take removes m from the inbox's byte count and hands it to the core, at
// the tick it arrived in (or the current one, if later): a message that
// waited for the driver renews a lease from when it came, not from when the
// driver got to it. reconcile is as for advanceTo.
func (n *Node) take(im inMsg, reconcile bool) error {
	n.advanceTo(n.tickOf(im.at), reconcile)
	n.inboxBytes.Add(-int64(messageBytes(im.m)))
	if err := n.core.Step(im.m); err != nil {
		return fmt.Errorf("step: %w", err)
	}
	return nil
}

// Done is closed when Run has returned.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the fatal error that stopped the node, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Close stops Run, if it is running, and waits for it. It fails every
// waiting call with [ErrClosed]. It does not close the storage or the
// transport, which belong to the caller. Idempotent.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { close(n.stop) })
	if n.running.Load() {
		<-n.done
	}
	return nil
}

// Run drives the node until ctx is done, Close is called or a fatal error
// (a storage error) happens, which it returns. It ticks the core every
// Config.TickInterval. Run may be called once.
func (n *Node) Run(ctx context.Context, tr Transport) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("replog: run called twice")
	}
	defer close(n.done)
	n.mu.Lock()
	n.tr = tr // written once, before the driver reads it; Status reads it under mu
	n.mu.Unlock()
	n.dialMembers(n.core.Status().Membership) // members added at runtime, not in Config.Masters
	n.log.Info("replica started", "replica", n.id, "addr", n.cfg.Addr)
	saverDone := make(chan struct{})
	go n.saver(saverDone)
	err := n.loop(ctx)
	close(n.saveReq) // no save is in flight: awaitSave waits for each
	<-saverDone
	n.shutdown(err)
	if err != nil {
		n.log.Error("replica stopped", "replica", n.id, "error", err)
		return err
	}
	n.log.Info("replica stopped", "replica", n.id)
	return nil
}

// saver runs the driver's saves, one at a time, in the order handed over.
func (n *Node) saver(done chan<- struct{}) {
	defer close(done)
	for b := range n.saveReq {
		n.saveDone <- n.st.Save(b)
	}
}

func (n *Node) loop(ctx context.Context) error {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	n.tickC = ticker.C
	n.tickStart = time.Now()
	if err := n.processReady(); err != nil {
		return err
	}
	for {
		// What came in during a save that was in flight waits no longer
		// (no save is in flight now), but as one more ready case: under
		// load every save defers messages, and the other cases (a stop, a
		// campaign, appends) must not starve behind them.
		// The inbox waits behind them, so each peer's messages are still
		// stepped in the order they came.
		var deferred <-chan struct{}
		inbox := n.inbox
		if len(n.deferred) > 0 {
			deferred, inbox = closedChan, nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.stop:
			return nil
		case <-deferred:
			if err := n.takeDeferred(); err != nil {
				return err
			}
		case im := <-inbox:
			if err := n.take(im, true); err != nil {
				return err
			}
			// Take what else is waiting, up to a bound, before the next
			// Ready: one Save then covers all of it.
			if err := n.drainInbox(256); err != nil {
				return err
			}
		case <-ticker.C:
			// A ticker drops ticks while this goroutine is blocked (a long
			// GC pause, a starved CPU). The core's leases are counted in
			// ticks, so logical time must never fall behind real time:
			// catch up every tick that came due, or a leader that stalled
			// past its lease would still believe it holds one. But first
			// take the messages that came in meanwhile, each at the tick it
			// arrived in: a follower that was stalled itself must not judge
			// the leader's lease lapsed while the heartbeats that renewed it
			// wait in its inbox.
			if err := n.takeDeferred(); err != nil {
				return err
			}
			if err := n.drainInbox(len(n.inbox)); err != nil {
				return err
			}
			n.advanceTo(n.dueTick(), true)
		case w := <-n.propc:
			n.queue = append(n.queue, w)
			n.collectProposals()
		case f := <-n.ctrlc:
			f()
		}
		if err := n.propose(); err != nil {
			return err
		}
		if err := n.processReady(); err != nil {
			return err
		}
	}
}

// closedChan is always ready to receive from.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// drainInbox takes up to limit messages already waiting in the inbox.
func (n *Node) drainInbox(limit int) error {
	for range limit {
		select {
		case im := <-n.inbox:
			if err := n.take(im, true); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// takeDeferred steps the messages deferred during a save, in arrival order.
func (n *Node) takeDeferred() error {
	ims := n.deferred
	n.deferred = nil
	for i, im := range ims {
		if err := n.take(im, true); err != nil {
			for _, rest := range ims[i+1:] {
				n.inboxBytes.Add(-int64(messageBytes(rest.m)))
			}
			return err
		}
	}
	return nil
}

// dueTick is the tick real time has reached since Run began.
func (n *Node) dueTick() uint64 {
	return uint64(time.Since(n.tickStart) / n.cfg.TickInterval)
}

// tickOf is the tick in which at falls (0 before Run began).
func (n *Node) tickOf(at time.Time) uint64 {
	if n.tickStart.IsZero() || !at.After(n.tickStart) {
		return 0
	}
	return uint64(at.Sub(n.tickStart) / n.cfg.TickInterval)
}

// advanceTo ticks the core until logical time reaches due (never back).
// reconcile runs the membership reconciliation every ReconcileTicks; it is
// off while a save is in flight (awaitSave), which proposes nothing.
func (n *Node) advanceTo(due uint64, reconcile bool) {
	for n.ticks < due {
		n.core.Tick()
		n.ticks++
		if reconcile && n.ticks%uint64(n.cfg.ReconcileTicks) == 0 {
			n.reconcile()
		}
	}
}

// collectProposals takes every Append already waiting, so they share one
// write and one sync.
func (n *Node) collectProposals() {
	for {
		select {
		case w := <-n.propc:
			n.queue = append(n.queue, w)
		default:
			return
		}
	}
}

// propose hands queued entries to the core, as many as its window takes.
func (n *Node) propose() error {
	for len(n.queue) > 0 {
		if n.core.Status().Role != paxos.RoleCoordinator {
			for _, w := range n.queue {
				w.done <- result{err: fmt.Errorf("append: %w", ErrNotLeader)}
			}
			n.queue = nil
			return nil
		}
		es := make([]paxos.Entry, len(n.queue))
		for i, w := range n.queue {
			es[i] = w.entry
		}
		k := len(es)
		var first paxos.Position
		var err error
		for {
			first, err = n.core.Propose(es[:k])
			if !errors.Is(err, paxos.ErrWindowFull) || k == 1 {
				break
			}
			k = (k + 1) / 2 // take what fits now; the rest waits for learned positions
		}
		switch {
		case errors.Is(err, paxos.ErrWindowFull):
			return nil // retried after the next Ready
		case errors.Is(err, paxos.ErrNotCoordinator):
			for _, w := range n.queue {
				w.done <- result{err: fmt.Errorf("append: %w", ErrNotLeader)}
			}
			n.queue = nil
			return nil
		case errors.Is(err, paxos.ErrInvalidEntry):
			n.queue[0].done <- result{err: fmt.Errorf("append: %w", err)}
			n.queue = n.queue[1:]
			continue
		case err != nil:
			return fmt.Errorf("propose: %w", err)
		}
		for i, w := range n.queue[:k] {
			w.pos = first + paxos.Position(i)
			n.inflight[w.pos] = w
		}
		n.queue = n.queue[k:]
	}
	return nil
}

// processReady runs the driver's duties for every Ready the core has.
func (n *Node) processReady() error {
	for {
		if len(n.later) > 0 {
			if err := n.processLater(); err != nil {
				return err
			}
			continue
		}
		if !n.core.HasReady() {
			break
		}
		rd := n.core.Ready()
		// 0. The coordinator's write requests leave first: its own accept
		// counts only once saved (Advance), so its sync and the followers'
		// overlap.
		if len(rd.Early) > 0 && n.tr != nil {
			n.tr.Send(rd.Early)
		}
		// 1. Persist before anything else of the batch leaves, synced when the
		// core says a message or a later decision relies on it (a vote, a
		// status or membership change). Learned marks and truncations are
		// saved without a sync: a crash may lose them, never a chosen
		// value (see package paxos, "Which batches must be synced").
		b := batchOf(rd)
		if publishEarly(rd) {
			// 2-3 first. Nothing in this batch is a vote or a state
			// change: its messages and learned entries rest on votes
			// already synced, and a crash could lose the unsynced save
			// anyway, so leaving before it changes nothing a crash can
			// show. It takes the save (a store commit, tens of µs) off the
			// appender's path.
			n.send(rd.Messages)
			n.publishHeld(rd.Learned)
			// Let the appenders just answered, and the transport's
			// senders, run before the store commit: on a busy P they would
			// otherwise wait behind it and the store's own goroutines.
			runtime.Gosched()
			if n.testAfterEarlyPublish != nil {
				n.testAfterEarlyPublish()
			}
			next, err := n.proposeWaiting()
			if err != nil {
				n.releaseHeld()
				return err
			}
			if next == nil {
				err = n.save(b)
				n.releaseHeld()
				if err != nil {
					return err
				}
			} else {
				// The appends that came in meanwhile (often the appenders
				// just answered) have their Ready taken now, and its batch
				// saved together with this one: one store commit instead
				// of two. No message was stepped in between, so the core
				// read nothing the unsaved batch changes.
				n.send(next.Early)
				next.Messages = n.sendFree(next.Messages, false)
				err = n.save(mergeBatches(b, batchOf(*next)))
				n.releaseHeld()
				if err != nil {
					return err
				}
				n.handleEvents(rd.Events)
				n.core.Advance(rd)
				rd = *next
				n.send(rd.Messages)
				n.publish(rd.Learned)
			}
		} else {
			// Answers to heartbeats that promise nothing unsaved leave
			// now: a follower's fsync is not added to the age of the
			// leader's lease.
			rd.Messages = n.sendFree(rd.Messages, false)
			if err := n.save(b); err != nil {
				return err
			}
			// 2. Send.
			n.send(rd.Messages)
			// 3. Publish learned entries, in position order.
			n.publish(rd.Learned)
		}
		n.handleEvents(rd.Events)
		// 4. Advance.
		n.core.Advance(rd)
		if err := n.propose(); err != nil {
			return err
		}
	}
	n.refreshStatus()
	return nil
}

// batchOf is the durable part of rd.
func batchOf(rd paxos.Ready) Batch {
	return Batch{HardState: rd.HardState, Actions: rd.Actions, TruncateBelow: rd.TruncateBelow, Sync: rd.MustSync}
}

// mergeBatches returns one batch that saves a then b: b's hard state if it
// has one, the actions of both with b's winning at a position both hold,
// the higher truncation, synced if either is.
func mergeBatches(a, b Batch) Batch {
	out := Batch{HardState: a.HardState, TruncateBelow: max(a.TruncateBelow, b.TruncateBelow), Sync: a.Sync || b.Sync}
	if b.HardState != nil {
		out.HardState = b.HardState
	}
	out.Actions = make([]paxos.Action, 0, len(a.Actions)+len(b.Actions))
	for _, x := range a.Actions {
		if !slices.ContainsFunc(b.Actions, func(y paxos.Action) bool { return y.Position == x.Position }) {
			out.Actions = append(out.Actions, x)
		}
	}
	out.Actions = append(out.Actions, b.Actions...)
	return out
}

// proposeWaiting proposes the appends waiting on propc, if any, and returns
// the Ready they make, or nil when there were none or the core has nothing
// to save or send for them.
func (n *Node) proposeWaiting() (*paxos.Ready, error) {
	n.collectProposals()
	if len(n.queue) == 0 {
		return nil, nil
	}
	if err := n.propose(); err != nil {
		return nil, err
	}
	if !n.core.HasReady() {
		return nil, nil
	}
	rd := n.core.Ready()
	return &rd, nil
}

// publishEarly reports whether rd's messages and learned entries may go
// before its save: a batch of learned marks alone (the coordinator's after
// a quorum answered, a follower's from a learned broadcast), unsynced,
// holding no hard state but the learned watermark (no Begin moved, no
// membership) and no truncation.
func publishEarly(rd paxos.Ready) bool {
	return !rd.MustSync && (rd.HardState == nil || rd.LearnedToOnly) && rd.TruncateBelow == 0 && len(rd.Learned) > 0
}

// processLater finishes the Readies taken while a save was in flight: it
// saves their batches together, in one Save (which may be slow in turn and
// take more), then sends what of their messages waited for it, publishes
// their learned entries and advances them, in order.
func (n *Node) processLater() error {
	later := n.later
	n.later = nil
	var b Batch
	for _, rd := range later {
		b = mergeBatches(b, batchOf(rd))
	}
	if err := n.save(b); err != nil {
		return err
	}
	for _, rd := range later {
		n.send(rd.Messages)
		n.publish(rd.Learned)
		n.handleEvents(rd.Events)
		n.core.Advance(rd)
	}
	return n.propose()
}

// save persists b, if it holds anything. The saver goroutine runs the Save
// while awaitSave keeps the lease alive.
func (n *Node) save(b Batch) error {
	if b.IsEmpty() {
		return nil
	}
	start := time.Now()
	n.saveReq <- b
	if err := n.awaitSave(); err != nil {
		return err
	}
	if d := time.Since(start); d > n.slowSave() {
		n.log.Warn("slow save; heartbeats went on meanwhile", "duration", d, "sync", b.Sync, "actions", len(b.Actions))
	}
	if b.HardState != nil {
		n.cluster.Store(uint64(b.HardState.Cluster))
		n.savedLearnedTo.Store(uint64(b.HardState.LearnedTo))
		if b.Sync {
			n.durablePromised, n.durableStatus = b.HardState.Promised, b.HardState.Status
		}
	}
	return nil
}

// slowSave is how long a save may take before it is logged: half the
// lease, which a save held the whole driver for before awaitSave.
func (n *Node) slowSave() time.Duration {
	return time.Duration(n.cfg.LeaseTicks) * n.cfg.TickInterval / 2
}

// awaitSave waits for the save in flight. A save usually takes well under a
// tick; one that does not (a stalled fdatasync under load was traced at
// 443 ms, past a 250 ms lease) must not stop the replica's part in keeping
// the leader's lease alive, or the followers' leases lapse and they elect
// another leader while this one is only slow. So while it waits, the driver
// keeps logical time going and steps heartbeats and their answers (and
// nothing else: every other message waits in deferred until no save is in
// flight). What the core makes of them is taken as a Ready into later,
// saved after the save in flight; of its messages only those that rely on
// nothing unsaved leave at once (the coordinator's write requests, Early,
// and the messages free reports), the others wait for its save. Nothing
// else changes meanwhile: no proposal is taken, no campaign starts, no
// membership is reconciled.
func (n *Node) awaitSave() error {
	select {
	case err := <-n.saveDone:
		return err
	default:
	}
	var stepErr error
	for {
		select {
		case err := <-n.saveDone:
			if err != nil {
				return err
			}
			return stepErr
		case <-n.tickC:
			// As in the loop: what waits in the inbox first, each at the
			// tick it arrived in, then the ticks that came due.
			for range len(n.inbox) {
				n.takeSaving(<-n.inbox, &stepErr)
			}
			if stepErr != nil {
				// The core failed part-way through a Step: it is not
				// ticked, and nothing it makes leaves, again.
				continue
			}
			n.advanceTo(n.dueTick(), false)
		case im := <-n.inbox:
			if !n.takeSaving(im, &stepErr) {
				continue
			}
		}
		if stepErr == nil {
			n.takeWhileSaving()
		}
	}
}

// takeSaving handles one incoming message while a save is in flight: it
// steps a heartbeat or an answer to one, defers any other (or drops it, if
// too many wait) and reports whether it stepped one. A step's error is kept
// in *stepErr, to be returned once the save is done.
func (n *Node) takeSaving(im inMsg, stepErr *error) bool {
	switch {
	case *stepErr != nil:
		n.inboxBytes.Add(-int64(messageBytes(im.m)))
		n.dropped.Add(1)
		return false
	case im.m.Type == paxos.MsgHeartbeat || im.m.Type == paxos.MsgHeartbeatResponse:
		if err := n.take(im, false); err != nil {
			*stepErr = err
			return false
		}
		return true
	case len(n.deferred) < n.cfg.InboxSize:
		n.deferred = append(n.deferred, im)
		return false
	default:
		n.inboxBytes.Add(-int64(messageBytes(im.m)))
		n.dropped.Add(1)
		return false
	}
}

// takeWhileSaving takes the core's Ready, if any, while a save is in
// flight (awaitSave): it sends the messages that may leave before the
// pending saves and keeps the rest of the Ready for processLater.
func (n *Node) takeWhileSaving() {
	if n.core.HasReady() {
		rd := n.core.Ready()
		n.send(rd.Early)
		rd.Early = nil
		rd.Messages = n.sendFree(rd.Messages, true)
		n.later = append(n.later, rd)
	}
	n.refreshStatus()
}

// sendFree sends the messages of msgs that may leave before the pending
// saves (free) and returns the others, in order. heartbeats says whether the
// coordinator's heartbeats are among them: only while a save is in flight,
// since a heartbeat reports the coordinator's learned position and, sent
// ahead of the learned broadcasts of its own Ready, would start needless
// catch-ups on the followers.
func (n *Node) sendFree(msgs []paxos.Message, heartbeats bool) []paxos.Message {
	k := 0
	var free []paxos.Message
	for _, m := range msgs {
		if n.free(m) && (heartbeats || m.Type != paxos.MsgHeartbeat) {
			free = append(free, m)
		} else {
			msgs[k] = m
			k++
		}
	}
	n.send(free)
	return msgs[:k]
}

// free reports whether m may be sent before the saves pending when it was
// made: it reveals and promises nothing those saves hold. A coordinator's
// heartbeat asks for nothing but an answer (its proposal was promised, and
// synced, before it was elected); a refusal and an answer that refuses or
// ignores a heartbeat promise nothing; an answer that accepts one promises
// its proposal, and is free only when that promise, and the VOTING status
// it reports, are already durable.
func (n *Node) free(m paxos.Message) bool {
	switch m.Type {
	case paxos.MsgHeartbeat, paxos.MsgRefused:
		return true
	case paxos.MsgHeartbeatResponse:
		if m.Result != paxos.ResultAccept {
			return true
		}
		return m.Status == paxos.StatusVoting && n.durableStatus == paxos.StatusVoting && !n.durablePromised.Less(m.Proposal)
	}
	return false
}

// send hands msgs to the transport.
func (n *Node) send(msgs []paxos.Message) {
	if len(msgs) == 0 || n.tr == nil {
		return
	}
	if n.log.IsTrace() {
		for _, m := range msgs {
			n.log.Trace("send", "type", m.Type, "to", m.To, "position", m.Position, "actions", len(m.Actions))
		}
	}
	n.tr.Send(msgs)
}

// publishHeld publishes learned entries whose learned marks are not saved
// yet. Until releaseHeld, the entries stay in memory whatever readers have
// read past, so that no reader looks for them in storage, where they are
// not yet marked learned.
func (n *Node) publishHeld(learned []paxos.Action) {
	n.mu.Lock()
	n.holding, n.holdFrom = true, learned[0].Position
	n.mu.Unlock()
	n.publish(learned)
}

// releaseHeld ends publishHeld's hold once the save is done, and trims the
// published entries to their bound.
func (n *Node) releaseHeld() {
	n.mu.Lock()
	n.holding, n.holdFrom = false, 0
	n.trimPublishedLocked()
	n.mu.Unlock()
}

// maxPublishedBytes bounds the entries kept for readers; older ones are read
// back from storage.
const maxPublishedBytes = 64 << 20

func (n *Node) publish(learned []paxos.Action) {
	if len(learned) == 0 {
		return
	}
	n.mu.Lock()
	for _, a := range learned {
		switch a.Entry.Type {
		case paxos.EntryAppend, paxos.EntrySnapshot:
			n.pub = append(n.pub, Entry{Position: a.Position, Type: a.Entry.Type, Data: a.Entry.Data})
			n.pubBytes += len(a.Entry.Data)
		case paxos.EntryTruncate:
			// Readers skip truncated positions: they get the snapshot at
			// To instead.
			n.dropPublishedLocked(a.Entry.To)
		}
		n.pubTo = max(n.pubTo, a.Position+1)
	}
	n.trimPublishedLocked()
	close(n.pubNotify)
	n.pubNotify = make(chan struct{})
	if n.elect != nil && n.elect.elected && n.pubTo > n.elect.last {
		n.elect.done <- result{pos: n.elect.last}
		n.elect = nil
	}
	n.mu.Unlock()
	// Answer the appenders only now: a Read that follows a returned Append
	// must find the entry published.
	for _, a := range learned {
		if w, ok := n.inflight[a.Position]; ok {
			delete(n.inflight, a.Position)
			if sameEntry(a.Entry, w.entry) {
				w.done <- result{pos: a.Position}
			} else {
				w.done <- result{err: fmt.Errorf("append at position %d: another coordinator wrote it: %w", a.Position, ErrLostLeadership)}
			}
		}
	}
}

func sameEntry(a, b paxos.Entry) bool {
	return a.Type == b.Type && a.To == b.To && bytes.Equal(a.Data, b.Data)
}

func (n *Node) handleEvents(evs []paxos.Event) {
	for _, ev := range evs {
		switch ev := ev.(type) {
		case paxos.Elected:
			n.log.Info("elected coordinator", "proposal", ev.Proposal, "position", ev.Last)
			if n.elect != nil {
				n.elect.elected, n.elect.last = true, ev.Last
				n.mu.Lock()
				ready := n.pubTo > ev.Last
				n.mu.Unlock()
				if ready {
					n.elect.done <- result{pos: ev.Last}
					n.elect = nil
				}
			}
		case paxos.CampaignFailed:
			n.log.Debug("campaign failed", "proposal", ev.By, "reason", ev.Reason)
			if n.elect != nil {
				n.elect.done <- result{err: fmt.Errorf("elect: campaign lost to proposal %v: %s: %w", ev.By, ev.Reason, ErrNotLeader)}
				n.elect = nil
			}
		case paxos.LostLeadership:
			n.log.Warn("lost leadership", "proposal", ev.By)
			n.failInflight(fmt.Errorf("append: proposal %v took over: %w", ev.By, ErrLostLeadership))
		case paxos.Joined:
			n.log.Info("replica joined", "begin", ev.Begin, "end", ev.End)
		case paxos.StatusChanged:
			n.log.Debug("replica status changed", "from", ev.From, "to", ev.To)
		case paxos.Refused:
			n.mu.Lock()
			changed := n.lastRefusal != ev.Reason
			n.lastRefusal = ev.Reason
			n.mu.Unlock()
			if changed {
				n.log.Warn("refused by peer", "peer", ev.From, "reason", ev.Reason)
			}
		case paxos.NotInitialized:
			n.log.Warn("log not initialized and auto-initialization is off", "empty", ev.Empty)
		case paxos.MembershipChanged:
			n.log.Info("membership changed", "position", ev.At, "members", membersString(ev.Membership))
			n.dialMembers(ev.Membership)
		}
	}
}

func membersString(m paxos.Membership) string {
	var b bytes.Buffer
	for i, x := range m.Members {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%d@%s", x.ID, x.Addr)
		if !x.Voter {
			b.WriteString("(learner)")
		}
	}
	return b.String()
}

func (n *Node) failInflight(err error) {
	for p, w := range n.inflight {
		w.done <- result{err: err}
		delete(n.inflight, p)
	}
	for _, w := range n.queue {
		w.done <- result{err: err}
	}
	n.queue = nil
}

// reconcile proposes at most one membership change toward Config.Masters.
func (n *Node) reconcile() {
	cs := n.core.Status()
	if cs.Role != paxos.RoleCoordinator || n.tr == nil {
		return
	}
	ch, ok := n.nextChange(cs, n.tr.Peers())
	if !ok {
		return
	}
	_, err := n.core.ChangeMembership(ch)
	desc := fmt.Sprintf("%d %d %s", ch.Type, ch.ID, ch.Addr)
	switch {
	case err == nil:
		n.log.Info("proposing membership change", "change", changeName(ch.Type), "replica", ch.ID, "addr", ch.Addr)
	case errors.Is(err, paxos.ErrChangeInProgress), errors.Is(err, paxos.ErrNotCaughtUp), errors.Is(err, paxos.ErrWindowFull):
	default:
		if desc != n.lastChange {
			n.log.Warn("membership change not possible", "change", changeName(ch.Type), "replica", ch.ID, "error", err)
		}
	}
	n.lastChange = desc
}

func changeName(t paxos.ChangeType) string {
	switch t {
	case paxos.AddNonVoter:
		return "add"
	case paxos.Promote:
		return "promote"
	case paxos.Remove:
		return "remove"
	}
	return "unknown"
}

// nextChange picks the next membership change: removals first (so that a
// wiped replica's old ID frees its voter slot), then additions, then
// promotions.
func (n *Node) nextChange(cs paxos.CoreStatus, peers []Peer) (paxos.MembershipChange, bool) {
	if cs.Membership.Cluster == 0 {
		return paxos.MembershipChange{}, false // not initialised yet
	}
	masters := n.whitelist()
	byAddr := map[string]paxos.ReplicaID{n.cfg.Addr: n.id}
	for _, p := range peers {
		if p.ID != 0 && p.Connected {
			byAddr[p.Addr] = p.ID
		}
	}
	for _, m := range cs.Membership.Members {
		if m.ID == n.id {
			continue
		}
		// An unlisted member is removed once it is gone (stopped for good,
		// as the guide's procedures require), or at once when an operator
		// removed it at runtime. A connected, healthy member that only this
		// coordinator's list lacks (a master added at runtime on an earlier
		// coordinator, before the files were updated) stays.
		if !slices.Contains(masters, m.Addr) && (byAddr[m.Addr] != m.ID || n.evict[m.Addr]) {
			return paxos.MembershipChange{Type: paxos.Remove, ID: m.ID}, true
		}
		if now, ok := byAddr[m.Addr]; ok && now != m.ID {
			return paxos.MembershipChange{Type: paxos.Remove, ID: m.ID}, true
		}
	}
	isMember := func(id paxos.ReplicaID) bool {
		return slices.ContainsFunc(cs.Membership.Members, func(m paxos.Member) bool { return m.ID == id })
	}
	for _, addr := range masters {
		if id, ok := byAddr[addr]; ok && !isMember(id) {
			return paxos.MembershipChange{Type: paxos.AddNonVoter, ID: id, Addr: addr}, true
		}
	}
	for _, m := range cs.Membership.Members {
		if !m.Voter {
			return paxos.MembershipChange{Type: paxos.Promote, ID: m.ID}, true
		}
	}
	return paxos.MembershipChange{}, false
}

// shutdown fails every waiter once the loop has ended.
func (n *Node) shutdown(err error) {
	werr := fmt.Errorf("replog: %w", ErrClosed)
	if err != nil {
		werr = err
	}
	n.failInflight(werr)
	if n.elect != nil {
		n.elect.done <- result{err: werr}
		n.elect = nil
	}
	n.mu.Lock()
	n.err = err
	n.status.Err = err
	close(n.pubNotify)
	n.pubNotify = make(chan struct{})
	n.mu.Unlock()
	n.runExited.Store(true)
	// Callers blocked on propc or ctrlc see done closed (Run's defer).
}

func (n *Node) refreshStatus() {
	cs := n.core.Status()
	s := Status{
		Replica:        cs.Replica,
		Cluster:        cs.Cluster,
		Addr:           n.cfg.Addr,
		Role:           cs.Role,
		ReplicaStatus:  cs.Status,
		Begin:          cs.Begin,
		End:            cs.End,
		LearnedTo:      cs.LearnedTo,
		Membership:     cs.Membership,
		Voter:          cs.Voter,
		Leader:         cs.Leader,
		InFlight:       cs.InFlight,
		Refused:        cs.Refused,
		RefusedByPeers: cs.RefusedByPeers,
		Catchup:        n.catchup.observe(time.Now(), n.core.Catchup(), cs.LearnedTo),
	}
	if cs.Role == paxos.RoleCoordinator && cs.LeaseRemaining > 0 {
		// Ticks not yet taken (the driver was busy) have already run the
		// lease down: count them too.
		lag := max(0, time.Since(n.tickStart)-time.Duration(n.ticks)*n.cfg.TickInterval)
		s.LeaseRemaining = max(0, time.Duration(cs.LeaseRemaining)*n.cfg.TickInterval-n.cfg.ClockDrift-lag)
	}
	for _, m := range cs.Membership.Members {
		if m.ID == cs.Leader {
			s.LeaderAddr = m.Addr
		}
	}
	if cs.Leader == n.id {
		s.LeaderAddr = n.cfg.Addr
	}
	if s.ReplicaStatus == paxos.StatusVoting && n.durableStatus != paxos.StatusVoting {
		// ReplicaStatus is the persisted status: while the save that makes
		// VOTING durable is in flight (awaitSave), the last synced one.
		s.ReplicaStatus = n.durableStatus
	}
	n.mu.Lock()
	// Learned "and published": while a save is in flight (awaitSave) the
	// core may have learned positions whose Ready is not published yet.
	s.LearnedTo = min(s.LearnedTo, n.pubTo)
	s.LastRefusal = n.lastRefusal
	s.Err = n.err
	n.status = s
	n.statusAt = time.Now()
	n.mu.Unlock()
	if f := n.testOnStatus.Load(); f != nil {
		(*f)(s)
	}
}

// Status returns a snapshot of the node's state, as of the last Ready or
// tick (LeaseRemaining is counted down to now). It does not block on the
// driver.
func (n *Node) Status() Status {
	n.mu.Lock()
	s := n.status
	at := n.statusAt
	tr := n.tr
	n.mu.Unlock()
	if s.LeaseRemaining > 0 {
		// The snapshot is up to a tick old: the lease has run down since.
		s.LeaseRemaining = max(0, s.LeaseRemaining-time.Since(at))
	}
	s.Membership.Members = slices.Clone(s.Membership.Members)
	s.InboxDropped = n.dropped.Load()
	if tr != nil {
		s.Peers = tr.Peers()
	}
	for _, m := range s.Membership.Members {
		if !m.Voter {
			continue
		}
		s.Voters++
		if m.ID == s.Replica || slices.ContainsFunc(s.Peers, func(p Peer) bool { return p.ID == m.ID && p.Connected }) {
			s.Reachable++
		}
	}
	if s.Voters > 0 {
		s.Quorum = max(s.Voters/2+1, min(n.cfg.Quorum, s.Voters))
	}
	return s
}

// closedErr is what a call returns once the node has stopped.
func (n *Node) closedErr(op string) error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, ErrClosed)
}

// submit queues one entry and waits until it is learned.
func (n *Node) submit(ctx context.Context, op string, e paxos.Entry) (paxos.Position, error) {
	w := &waiter{entry: e, done: make(chan result, 1)}
	select {
	case n.propc <- w:
	case <-ctx.Done():
		return 0, fmt.Errorf("%s: %w", op, ctx.Err())
	case <-n.stop:
		return 0, n.closedErr(op)
	case <-n.done:
		return 0, n.closedErr(op)
	}
	select {
	case r := <-w.done:
		return r.pos, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

// Append proposes data at the next position and returns that position once
// it is learned by a quorum. Concurrent Appends are batched into one write
// and one sync, and pipelined up to the core's window. The order of
// concurrent Appends in the log is the order the driver took them in.
// Errors: [ErrNotLeader] (nothing was written), [ErrLostLeadership] (the
// outcome is unknown), [ErrClosed], a storage error, or ctx's error (the
// entry may still be learned). data is owned by the node after the call.
func (n *Node) Append(ctx context.Context, data []byte) (paxos.Position, error) {
	if data == nil {
		data = []byte{}
	}
	return n.submit(ctx, "append", paxos.Entry{Type: paxos.EntryAppend, Data: data})
}

// AppendSnapshot is Append for an application snapshot: data is the state
// after every position below the returned one.
func (n *Node) AppendSnapshot(ctx context.Context, data []byte) (paxos.Position, error) {
	if data == nil {
		data = []byte{}
	}
	return n.submit(ctx, "append snapshot", paxos.Entry{Type: paxos.EntrySnapshot, Data: data})
}

// Truncate writes a truncation of every position below to and returns once
// it is learned; replicas then delete those positions. The entry at to
// should be a snapshot. It fails like Append.
func (n *Node) Truncate(ctx context.Context, to paxos.Position) error {
	_, err := n.submit(ctx, "truncate", paxos.Entry{Type: paxos.EntryTruncate, To: to})
	return err
}

// Elect runs one campaign for the coordinator role and returns the last
// position of the log once every position up to it is learned and
// published. A lost campaign returns an error wrapping [ErrNotLeader] with
// the reason (a live lease elsewhere, a higher proposal, not a voter). If
// ctx ends first the campaign is abandoned (Demote).
func (n *Node) Elect(ctx context.Context) (paxos.Position, error) {
	ew := &electWaiter{done: make(chan result, 1)}
	if err := n.do(ctx, "elect", func() {
		if n.elect != nil {
			ew.done <- result{err: errors.New("elect: another election is running")}
			return
		}
		switch err := n.core.Campaign(); {
		case errors.Is(err, paxos.ErrAlreadyCoordinator) && n.core.Status().Role == paxos.RoleCoordinator:
			var last paxos.Position
			if cs := n.core.Status(); cs.End > 0 {
				last = cs.End - 1
			}
			ew.done <- result{pos: last}
		case errors.Is(err, paxos.ErrAlreadyCoordinator), errors.Is(err, paxos.ErrNotVoting), errors.Is(err, paxos.ErrLeaseHeld):
			ew.done <- result{err: fmt.Errorf("elect: %w: %w", err, ErrNotLeader)}
		case err != nil:
			ew.done <- result{err: fmt.Errorf("elect: %w", err)}
		default:
			n.elect = ew
		}
	}); err != nil {
		return 0, err
	}
	select {
	case r := <-ew.done:
		return r.pos, r.err
	case <-ctx.Done():
		_ = n.do(context.Background(), "elect", func() {
			if n.elect == ew {
				n.elect = nil
				n.core.Demote()
			}
		})
		return 0, fmt.Errorf("elect: %w", ctx.Err())
	}
}

// Demote gives up the coordinator role (or a campaign). Appends in flight
// fail with [ErrLostLeadership].
func (n *Node) Demote() {
	_ = n.do(context.Background(), "demote", func() {
		n.core.Demote()
		n.failInflight(fmt.Errorf("append: demoted: %w", ErrLostLeadership))
		if n.elect != nil {
			n.elect.done <- result{err: fmt.Errorf("elect: demoted: %w", ErrNotLeader)}
			n.elect = nil
		}
	})
}

// do runs f on the driver goroutine and waits until it has run.
func (n *Node) do(ctx context.Context, op string, f func()) error {
	ran := make(chan struct{})
	// The status is refreshed before the caller resumes: what f changed
	// (a Demote, a campaign) shows in Status at once, not only after the
	// driver's next Ready, which may wait for a save.
	g := func() { f(); n.refreshStatus(); close(ran) }
	select {
	case n.ctrlc <- g:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case <-n.stop:
		return n.closedErr(op)
	case <-n.done:
		return n.closedErr(op)
	}
	<-ran
	return nil
}

// Read returns learned entries at positions >= from, in position order, at
// least one, blocking until one is learned or ctx is done. No-ops,
// truncations and membership changes are skipped; if positions >= from were
// truncated, the first entry returned is the snapshot that replaced them.
// Reading from a position tells the node that the entries below it are no
// longer needed in memory. The returned slices must not be modified.
// Errors: [ErrClosed], a storage error, ctx's error.
func (n *Node) Read(ctx context.Context, from paxos.Position) ([]Entry, error) {
	for {
		n.mu.Lock()
		if n.err != nil || n.runExited.Load() {
			n.mu.Unlock()
			return nil, n.closedErr("read")
		}
		n.dropPublishedLocked(from) // what the reader is past
		var bufFrom paxos.Position = n.pubTo
		if len(n.pub) > 0 {
			bufFrom = n.pub[0].Position
		}
		pubTo := n.pubTo
		var out []Entry
		if from >= bufFrom {
			out = n.takeLocked(from, DefaultMaxReadBytes)
		}
		notify := n.pubNotify
		n.mu.Unlock()

		if len(out) > 0 {
			return out, nil
		}
		if from < bufFrom && from < pubTo {
			// Learned before what memory holds: read it back.
			out, err := n.readStored(from, min(bufFrom, pubTo))
			if err != nil {
				return nil, err
			}
			if len(out) > 0 {
				return out, nil
			}
			if bufFrom > from {
				from = bufFrom
				continue
			}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, fmt.Errorf("read: %w", ctx.Err())
		case <-n.stop:
			return nil, n.closedErr("read")
		}
	}
}

// trimPublishedLocked drops the oldest published entries past
// maxPublishedBytes, keeping at least one and, during a hold, every entry
// from holdFrom on.
func (n *Node) trimPublishedLocked() {
	for n.pubBytes > maxPublishedBytes && len(n.pub) > 1 && (!n.holding || n.pub[0].Position < n.holdFrom) {
		n.pubBytes -= len(n.pub[0].Data)
		n.pub = n.pub[1:]
	}
}

// dropPublishedLocked drops published entries below p (during a hold, only
// those below holdFrom as well).
func (n *Node) dropPublishedLocked(p paxos.Position) {
	if n.holding {
		p = min(p, n.holdFrom)
	}
	i, _ := slices.BinarySearchFunc(n.pub, p, func(e Entry, p paxos.Position) int {
		return cmpPos(e.Position, p)
	})
	for _, e := range n.pub[:i] {
		n.pubBytes -= len(e.Data)
	}
	n.pub = n.pub[i:]
}

func cmpPos(a, b paxos.Position) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// takeLocked returns the buffered entries from position from on, up to
// about maxBytes. (Entries below from stay buffered only during a hold.)
func (n *Node) takeLocked(from paxos.Position, maxBytes int) []Entry {
	i, _ := slices.BinarySearchFunc(n.pub, from, func(e Entry, p paxos.Position) int {
		return cmpPos(e.Position, p)
	})
	size, k := 0, i
	for k < len(n.pub) {
		size += len(n.pub[k].Data)
		if k > i && size > maxBytes {
			break
		}
		k++
	}
	return slices.Clone(n.pub[i:k])
}

// readStored reads learned application entries in [from, to) from storage.
func (n *Node) readStored(from, to paxos.Position) ([]Entry, error) {
	// The watermark first: what it covers was saved before the read.
	learnedTo := paxos.Position(n.savedLearnedTo.Load())
	as, err := n.st.Actions(from, to, DefaultMaxReadBytes)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var out []Entry
	for _, a := range as {
		if !a.Learned && a.Position >= learnedTo {
			continue
		}
		if a.Entry.Type == paxos.EntryAppend || a.Entry.Type == paxos.EntrySnapshot {
			out = append(out, Entry{Position: a.Position, Type: a.Entry.Type, Data: a.Entry.Data})
		}
	}
	if len(out) == 0 && len(as) > 0 && as[len(as)-1].Position+1 < to {
		// Only no-ops in this chunk: continue after it.
		return n.readStored(as[len(as)-1].Position+1, to)
	}
	return out, nil
}
