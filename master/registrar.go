package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// registrar keeps the registry: it applies learned log entries in position
// order (on every master) and, on the leader, batches submitted operations
// into log entries, keeps several batches in flight, writes snapshots and
// truncates the log below them. After a failed store it aborts for good, as
// Mesos's registrar does: the master then exits.
type registrar struct {
	log      Log
	logger   hclog.Logger
	now      func() time.Time
	proposer string // this process's identity in the batches it writes
	cluster  string

	storeTimeout    time.Duration
	maxBatchOps     int
	maxInFlight     int
	snapshotEntries int
	snapshotBytes   int
	observeStore    func(kind string, d time.Duration)
	stages          *writeStages // nil: stages not timed

	submitc chan *proposal
	queued  atomic.Int64

	abortOnce sync.Once
	abortErr  error
	aborted   chan struct{}

	mu          sync.RWMutex
	reg         *Registry
	roles       roleIndex // weights of reg by role, for applying weight updates
	next        uint64    // the next position to read
	applied     uint64    // entries applied, for tests and metrics
	leaders     uint64    // leader records applied (one per election), for metrics
	sinceSnap   int       // entries since the last snapshot
	sinceBytes  int       // bytes of entries since the last snapshot
	changed     chan struct{}
	waiters     map[uint64]*inflight // own batches in flight, by sequence
	plain       []ownBatch           // own plain batches in flight (see plainBatch)
	plainUsed   uint64               // own plain batches applied without decoding, for tests
	proposedSeq uint64               // highest own batch sequence proposed
	written     uint64               // one past the highest position known written (own writes, or the log's end at election)
	canSnapshot bool                 // set once the leader's registry is recovered
}

// ownBatch is a batch this master proposed and the bytes it stored.
type ownBatch struct {
	data []byte
	b    *batch
}

// proposal is one submitted operation and where its result goes.
type proposal struct {
	op        Operation
	done      chan error // buffered 1
	submitted time.Time  // when submit was called, for stage timings
	resolved  time.Time  // when the result was sent on done; read after receiving it
}

// inflight is an own batch handed to the log and not yet applied.
type inflight struct {
	ps     []*proposal
	called time.Time // when Append was called, for stage timings
}

func newRegistrar(cfg *Config, lg Log, proposer string, observe func(string, time.Duration), stages *writeStages) *registrar {
	return &registrar{
		log:             lg,
		logger:          cfg.Logger,
		now:             cfg.Now,
		proposer:        proposer,
		cluster:         cfg.Cluster,
		storeTimeout:    cfg.RegistryStoreTimeout,
		maxBatchOps:     cfg.MaxBatchOps,
		maxInFlight:     cfg.MaxInFlight,
		snapshotEntries: cfg.SnapshotEntries,
		snapshotBytes:   cfg.SnapshotBytes,
		observeStore:    observe,
		stages:          stages,
		submitc:         make(chan *proposal, 4096),
		aborted:         make(chan struct{}),
		reg:             &Registry{},
		changed:         make(chan struct{}),
		waiters:         map[uint64]*inflight{},
	}
}

// view calls f with the current registry under the read lock; f must not
// keep or modify it.
func (r *registrar) view(f func(reg *Registry)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f(r.reg)
}

// follow reads learned entries from the log and applies them until ctx is
// done (then it returns nil) or the log fails.
func (r *registrar) follow(ctx context.Context) error {
	for {
		r.mu.RLock()
		from := r.next
		r.mu.RUnlock()
		es, err := r.log.Read(ctx, from)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read log from position %d: %w", from, err)
		}
		for _, e := range es {
			if err := r.applyEntry(e); err != nil {
				return err
			}
		}
	}
}

// applyEntry applies one learned entry and resolves this master's waiters.
func (r *registrar) applyEntry(e Entry) error {
	var (
		resolve *inflight
		results []error
	)
	start := time.Now()
	r.mu.Lock()
	if e.Position < r.next {
		r.mu.Unlock()
		return nil // already applied (a log may repeat a position after a snapshot)
	}
	switch e.Kind {
	case EntrySnapshot:
		reg, err := decodeSnapshot(e.Data)
		if err != nil {
			r.mu.Unlock()
			return fmt.Errorf("apply position %d: %w", e.Position, err)
		}
		r.reg = reg
		r.sinceSnap, r.sinceBytes = 0, 0
	case EntryAppend:
		b := r.takePlainLocked(e.Data)
		if b != nil {
			r.plainUsed++
		} else {
			var err error
			if b, err = decodeBatch(e.Data); err != nil {
				r.mu.Unlock()
				return fmt.Errorf("apply position %d: %w", e.Position, err)
			}
		}
		results = make([]error, len(b.Ops))
		for i := range b.Ops {
			op := &b.Ops[i]
			if op.Type == OpRecover && op.MasterInfo != nil && r.cluster != "" &&
				op.MasterInfo.Cluster != "" && op.MasterInfo.Cluster != r.cluster {
				r.mu.Unlock()
				return fmt.Errorf("apply position %d: leader record of cluster %q, this master is in %q: %w",
					e.Position, op.MasterInfo.Cluster, r.cluster, ErrIdentity)
			}
			results[i] = r.reg.applyIndexed(op, b.Time, &r.roles)
			if op.Type == OpRecover {
				r.leaders++
			}
		}
		r.sinceSnap++
		r.sinceBytes += len(e.Data)
		if b.Proposer == r.proposer {
			resolve = r.waiters[b.Seq]
			delete(r.waiters, b.Seq)
			r.dropPlainLocked(b.Seq)
		}
	}
	r.next = e.Position + 1
	r.applied++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if resolve == nil {
		return nil
	}
	end := time.Now()
	r.stages.applied(len(resolve.ps), start.Sub(resolve.called), end.Sub(start))
	for i, p := range resolve.ps {
		if i < len(results) {
			p.resolved = end
			p.done <- results[i]
		}
	}
	return nil
}

// submit proposes op and waits until it is learned and applied, returning
// the result of applying it (an *OpError if the registry refused it). Only
// the leader's proposer consumes submissions.
func (r *registrar) submit(ctx context.Context, op Operation) error {
	p := &proposal{op: op, done: make(chan error, 1), submitted: time.Now()}
	r.queued.Add(1)
	select {
	case r.submitc <- p:
	case <-r.aborted:
		r.queued.Add(-1)
		return r.abortErr
	case <-ctx.Done():
		r.queued.Add(-1)
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		if !p.resolved.IsZero() {
			r.stages.replied(time.Since(p.resolved))
		}
		return err
	case <-r.aborted:
		select {
		case err := <-p.done: // applied just before the abort
			return err
		default:
			return fmt.Errorf("%w: %w", ErrRegistrarAborted, r.abortErr)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abort puts the registrar in its permanent error state: every waiting and
// later operation fails with err.
func (r *registrar) abort(err error) {
	r.abortOnce.Do(func() {
		r.abortErr = err
		close(r.aborted)
		r.mu.Lock()
		ws := r.waiters
		r.waiters = map[uint64]*inflight{}
		r.mu.Unlock()
		for _, w := range ws {
			for _, p := range w.ps {
				p.done <- fmt.Errorf("%w: %w", ErrRegistrarAborted, err)
			}
		}
	})
}

// propose runs the leader's side until ctx is done: it batches submitted
// operations, appends each batch with the store timeout, keeps up to
// maxInFlight batches in flight, and writes a snapshot when one is due. A
// failed store aborts the registrar.
func (r *registrar) propose(ctx context.Context) {
	sem := make(chan struct{}, r.maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var first *proposal
		select {
		case <-ctx.Done():
			return
		case <-r.aborted:
			return
		case first = <-r.submitc:
		}
		waitFrom := time.Now()
		// Take an in-flight slot before draining the queue, so operations
		// that arrive while every slot is busy join the next batch.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.queued.Add(-1)
			r.failAll([]*proposal{first}, ctx.Err())
			return
		case <-r.aborted:
			r.queued.Add(-1)
			r.failAll([]*proposal{first}, r.abortErr)
			return
		}
		slotWait := time.Since(waitFrom)
		ps := []*proposal{first}
	drain:
		for len(ps) < r.maxBatchOps {
			select {
			case p := <-r.submitc:
				ps = append(ps, p)
			default:
				break drain
			}
		}
		r.queued.Add(-int64(len(ps)))
		if r.snapshotDue() {
			<-sem // snapshot takes every slot itself
			err := r.snapshot(ctx, sem)
			if err == nil {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
			if err != nil {
				r.failAll(ps, err)
				if ctx.Err() == nil {
					r.abort(err)
				}
				return
			}
		}
		sealedAt := time.Now()
		if r.stages != nil {
			r.stages.sealed(len(ps), slotWait, len(sem))
			for _, p := range ps {
				r.stages.queued(sealedAt.Sub(p.submitted))
			}
		}
		b := &batch{Version: batchVersion, Time: r.now().UnixNano(), Proposer: r.proposer, Ops: make([]Operation, len(ps))}
		for i, p := range ps {
			b.Ops[i] = p.op
		}
		r.mu.Lock()
		r.proposedSeq++
		b.Seq = r.proposedSeq
		r.mu.Unlock()
		data, err := encodeBatch(b)
		if err != nil {
			<-sem
			r.abort(err)
			r.failAll(ps, fmt.Errorf("%w: %w", ErrRegistrarAborted, err))
			return
		}
		w := &inflight{ps: ps, called: time.Now()}
		r.stages.handedOver(len(ps), len(data), w.called.Sub(sealedAt))
		r.mu.Lock()
		r.waiters[b.Seq] = w
		if plainBatch(b) {
			// The log owns data once appended: keep a copy to recognise it.
			r.plain = append(r.plain, ownBatch{data: bytes.Clone(data), b: b})
		}
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pos, err := r.store(ctx, "append", data, r.log.Append)
			r.stages.appended(len(w.ps), time.Since(w.called))
			if err != nil {
				if ctx.Err() != nil {
					r.abort(fmt.Errorf("store batch %d: %w", b.Seq, ctx.Err()))
					return
				}
				r.abort(err)
				return
			}
			r.mu.Lock()
			r.written = max(r.written, pos+1)
			r.mu.Unlock()
		}()
	}
}

// takePlainLocked returns the own plain batch whose stored bytes are data,
// removing it, or nil. The caller holds r.mu. Comparing bytes, not
// sequence numbers, makes sure the batch applied is the one every other
// master decodes from the same entry.
func (r *registrar) takePlainLocked(data []byte) *batch {
	for i, o := range r.plain {
		if bytes.Equal(o.data, data) {
			r.plain = slices.Delete(r.plain, i, i+1)
			return o.b
		}
	}
	return nil
}

// dropPlainLocked forgets the own plain batch seq, once it is applied. The
// caller holds r.mu.
func (r *registrar) dropPlainLocked(seq uint64) {
	r.plain = slices.DeleteFunc(r.plain, func(o ownBatch) bool { return o.b.Seq == seq })
}

// failAll resolves ps with err.
func (r *registrar) failAll(ps []*proposal, err error) {
	for _, p := range ps {
		p.done <- err
	}
}

// store runs one log write under the store timeout and classifies its
// failure as the master's exit.
func (r *registrar) store(ctx context.Context, kind string, data []byte, write func(context.Context, []byte) (uint64, error)) (uint64, error) {
	sctx, cancel := context.WithTimeout(ctx, r.storeTimeout)
	defer cancel()
	start := time.Now()
	pos, err := write(sctx, data)
	if r.observeStore != nil {
		r.observeStore(kind, time.Since(start))
	}
	if err == nil {
		return pos, nil
	}
	return 0, r.storeError(ctx, sctx, err)
}

// storeError turns a failed log write into the exit it causes.
func (r *registrar) storeError(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return &ExitError{
			Code:   ExitTransient,
			Reason: fmt.Sprintf("%s: failed to perform store within %v (registry_store_timeout)", reasonStoreFailed, r.storeTimeout),
			Err:    fmt.Errorf("%w: %w", ErrStoreTimeout, err),
		}
	}
	return exitFor(reasonStoreFailed, fmt.Errorf("store: %w", err))
}

// startLeading records that every position up to last is learned, so a
// snapshot is never taken before the registry has applied them.
func (r *registrar) startLeading(last uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = max(r.written, last+1)
}

// recovered allows snapshots: the leader record has been applied.
func (r *registrar) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.canSnapshot = true
}

// snapshotDue reports whether enough has been written since the last
// snapshot. Before recovery it is never due: the registry may still be
// replaying, and a snapshot of it followed by a truncation would lose
// entries.
func (r *registrar) snapshotDue() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.canSnapshot && (r.sinceSnap >= r.snapshotEntries || r.sinceBytes >= r.snapshotBytes)
}

// snapshot waits for every batch in flight to be applied, appends the
// registry as a snapshot, and truncates the log below it.
func (r *registrar) snapshot(ctx context.Context, sem chan struct{}) error {
	// Own every in-flight slot: all earlier appends have returned. Batches
	// stored concurrently may sit in the log in another order than they
	// were proposed, so wait for the reader to pass the highest position
	// written, not for the highest batch sequence.
	for range cap(sem) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.aborted:
			return r.abortErr
		}
	}
	defer func() {
		for range cap(sem) {
			<-sem
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, r.storeTimeout)
	defer cancel()
	for {
		r.mu.RLock()
		done, ch := r.next >= r.written, r.changed
		r.mu.RUnlock()
		if done {
			break
		}
		select {
		case <-ch:
		case <-wctx.Done():
			return r.storeError(ctx, wctx, fmt.Errorf("wait for batches to apply before snapshot: %w", wctx.Err()))
		}
	}
	r.mu.RLock()
	data, err := encodeSnapshot(r.reg)
	through := r.next
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	pos, err := r.store(ctx, "snapshot", data, r.log.AppendSnapshot)
	if err != nil {
		return err
	}
	if _, err := r.store(ctx, "truncate", nil, func(c context.Context, _ []byte) (uint64, error) {
		return pos, r.log.Truncate(c, pos)
	}); err != nil {
		return err
	}
	r.logger.Debug("wrote registry snapshot", "position", pos, "through", through, "bytes", len(data))
	// Count from the snapshot now, so the next batch does not trigger
	// another before the reader has applied it.
	r.mu.Lock()
	r.sinceSnap, r.sinceBytes = 0, 0
	r.mu.Unlock()
	return nil
}
