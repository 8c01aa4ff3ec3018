package master

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"
)

// fakeCluster is an in-memory replicated log shared by the fakeLogs of
// several masters: every write is learned at once by all of them. Tests
// steer leadership (depose, expire the lease), quorum and failures.
type fakeCluster struct {
	mu        sync.Mutex
	entries   []Entry // learned, ascending; Kind 0 = no application data
	history   []Entry // every entry ever learned, never truncated
	next      uint64
	begin     uint64
	coord     *fakeLog
	lease     time.Duration // lease the coordinator holds and others see
	grant     time.Duration // lease granted on election
	changed   chan struct{}
	members   int
	reachable int
	quorum    int
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{changed: make(chan struct{}), grant: 2 * time.Second, members: 3, reachable: 3, quorum: 2}
}

// node returns a new fakeLog for one master.
func (c *fakeCluster) node() *fakeLog { return &fakeLog{c: c} }

// write learns an entry at the next position; callers hold c.mu.
func (c *fakeCluster) write(kind EntryKind, data []byte) uint64 {
	pos := c.next
	c.next++
	e := Entry{Position: pos, Kind: kind, Data: slices.Clone(data)}
	c.entries = append(c.entries, e)
	c.history = append(c.history, e)
	close(c.changed)
	c.changed = make(chan struct{})
	return pos
}

// depose takes the coordinator role away (another replica took over).
func (c *fakeCluster) depose() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.coord = nil
	c.lease = 0
}

// setLease sets the lease every node sees.
func (c *fakeCluster) setLease(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lease = d
}

// setReachable sets how many voters are reachable.
func (c *fakeCluster) setReachable(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reachable = n
}

// appendRaw writes an arbitrary entry, as another leader would.
func (c *fakeCluster) appendRaw(kind EntryKind, data []byte) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.write(kind, data)
}

// snapshot returns the learned entries with application data.
func (c *fakeCluster) learned() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for _, e := range c.entries {
		if e.Kind != 0 {
			out = append(out, e)
		}
	}
	return out
}

// all returns every entry ever learned, truncated ones included.
func (c *fakeCluster) all() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.history)
}

func (c *fakeCluster) bounds() (begin, next uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.begin, c.next
}

// fakeLog is one master's view of a fakeCluster.
type fakeLog struct {
	c *fakeCluster

	mu         sync.Mutex
	electErr   error         // returned by Elect when set
	appendGate chan struct{} // when set, writes wait until it is closed
	readGate   chan struct{} // when set, reads wait until it is closed
	readErr    error         // returned by Read when set
	appendErr  error         // returned by writes when set
	appends    int
	elects     int
	latency    time.Duration // simulated replication time added to every write
}

var _ Log = (*fakeLog)(nil)

func (l *fakeLog) setElectErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.electErr = err
}

// holdAppends makes writes block until the returned function is called.
func (l *fakeLog) holdAppends() (release func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.appendGate = ch
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.appendGate = nil
			l.mu.Unlock()
			close(ch)
		})
	}
}

// holdReads makes reads block until the returned function is called.
func (l *fakeLog) holdReads() (release func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.readGate = ch
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.readGate = nil
			l.mu.Unlock()
			close(ch)
		})
	}
}

func (l *fakeLog) Elect(ctx context.Context) (uint64, error) {
	l.mu.Lock()
	err := l.electErr
	l.elects++
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reachable < c.quorum {
		return 0, ErrNotElected
	}
	if c.coord != nil && c.coord != l && c.lease > 0 {
		return 0, ErrNotElected
	}
	c.coord = l
	c.lease = c.grant
	if c.next == 0 {
		return 0, nil
	}
	return c.next - 1, nil
}

// gate waits for the append gate, if any.
func (l *fakeLog) gate(ctx context.Context) error {
	l.mu.Lock()
	g, aerr := l.appendGate, l.appendErr
	l.appends++
	lat := l.latency
	l.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	if lat > 0 {
		// Simulated replication time, not synchronisation: the write
		// completes after it either way.
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if g == nil {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *fakeLog) write(ctx context.Context, kind EntryKind, data []byte) (uint64, error) {
	if err := l.gate(ctx); err != nil {
		return 0, err
	}
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.coord != l {
		return 0, ErrLostLeadership
	}
	return c.write(kind, data), nil
}

func (l *fakeLog) Append(ctx context.Context, data []byte) (uint64, error) {
	return l.write(ctx, EntryAppend, data)
}

func (l *fakeLog) AppendSnapshot(ctx context.Context, data []byte) (uint64, error) {
	return l.write(ctx, EntrySnapshot, data)
}

func (l *fakeLog) Truncate(ctx context.Context, to uint64) error {
	if _, err := l.write(ctx, 0, nil); err != nil {
		return err
	}
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.begin = max(c.begin, to)
	c.entries = slices.DeleteFunc(c.entries, func(e Entry) bool { return e.Position < to })
	return nil
}

func (l *fakeLog) Read(ctx context.Context, from uint64) ([]Entry, error) {
	c := l.c
	for {
		l.mu.Lock()
		g, rerr := l.readGate, l.readErr
		l.mu.Unlock()
		if rerr != nil {
			return nil, rerr
		}
		if g != nil {
			select {
			case <-g:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c.mu.Lock()
		from = max(from, c.begin)
		var out []Entry
		for _, e := range c.entries {
			if e.Position >= from && e.Kind != 0 {
				out = append(out, e)
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *fakeLog) Status() LogStatus {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st := LogStatus{
		Coordinator: c.coord == l,
		Replica:     "VOTING",
		Begin:       c.begin,
		Members:     c.members,
		Reachable:   c.reachable,
		Quorum:      c.quorum,
	}
	if c.next > 0 {
		st.End = c.next - 1
	}
	if c.coord != nil {
		st.Lease = c.lease
	}
	return st
}

// chanListener is a net.Listener that never accepts, so masters under
// synctest serve their API only through Handler.
type chanListener struct {
	addr   *net.TCPAddr
	once   sync.Once
	closed chan struct{}
}

func newChanListener(port int) *chanListener {
	return &chanListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
