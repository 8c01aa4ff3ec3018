package paxos

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// catchupRanges returns the [Position, End) ranges of the catch-up requests
// in msgs.
func catchupRanges(msgs []Message) [][2]Position {
	var out [][2]Position
	for _, m := range msgs {
		if m.Type == MsgCatchupRequest {
			out = append(out, [2]Position{m.Position, m.End})
		}
	}
	return out
}

// catchupAnswer is the answer of a VOTING replica 2 that learned every
// position below end: the learned actions [from, to).
func catchupAnswer(from, to, end Position) Message {
	m := Message{Type: MsgCatchupResponse, From: 2, To: 1, Result: ResultAccept, Begin: 0, End: end, Status: StatusVoting}
	for p := from; p < to; p++ {
		m.Actions = append(m.Actions, learnedAt(p, Entry{Type: EntryAppend, Data: []byte(fmt.Sprint(p))}))
	}
	return m
}

// openCatchupWindow has replica 2's heartbeat start a catch-up to end on c,
// answers its first request with [1, 11) (setting the span to 10 positions)
// and returns the window of ranges then in flight, checked full.
func openCatchupWindow(t *testing.T, c *Core, s *memStore, end Position) [][2]Position {
	t.Helper()
	step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: end})
	_, msgs := stepReady(t, c, s, catchupAnswer(1, 11, end))
	rs := catchupRanges(msgs)
	if len(rs) != catchupWindow {
		t.Fatalf("%d requests in flight, want %d", len(rs), catchupWindow)
	}
	return rs
}

// stepReady steps m and returns the first Ready it produces, saved and
// advanced, and the messages of every Ready.
func stepReady(t *testing.T, c *Core, s *memStore, m Message) (Ready, []Message) {
	t.Helper()
	m.Cluster = testCluster
	if err := c.Step(m); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	s.save(rd)
	s.sync()
	c.Advance(rd)
	msgs, _ := drain(t, c, s)
	return rd, append(rd.Messages, msgs...)
}

// A lagging replica keeps catchupWindow requests over disjoint ranges of one
// answer's size in flight, learns answers that arrive out of order, saves
// them without a sync, and refills the window as answers come.
func TestCatchupPipelined(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	const end = 200
	got := catchupRanges(step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: end}))
	if diff := cmp.Diff([][2]Position{{1, end}}, got); diff != "" {
		t.Fatalf("first request (-want +got):\n%s", diff)
	}
	// The first answer is cut short at 10 positions (MaxBatchBytes): the
	// span is 10 and the window is filled with ranges of 10.
	rd, msgs := stepReady(t, c, s, catchupAnswer(1, 11, end))
	if rd.MustSync {
		t.Errorf("a batch of caught-up learned actions is synced")
	}
	var want [][2]Position
	for p := Position(11); p < 11+catchupWindow*10; p += 10 {
		want = append(want, [2]Position{p, p + 10})
	}
	if diff := cmp.Diff(want, catchupRanges(msgs)); diff != "" {
		t.Fatalf("window (-want +got):\n%s", diff)
	}
	// The last range is answered first: learned ahead, learnedTo stays,
	// and the window, a window's span above learnedTo, waits.
	last := want[len(want)-1]
	rd, msgs = stepReady(t, c, s, catchupAnswer(last[0], last[1], end))
	if rd.MustSync {
		t.Errorf("a batch of learned actions ahead of learnedTo is synced")
	}
	if c.learnedTo != 11 {
		t.Fatalf("learnedTo %d after an answer above a gap, want 11", c.learnedTo)
	}
	if got := catchupRanges(msgs); len(got) != 0 {
		t.Fatalf("requests %v past the window above learnedTo 11, want none", got)
	}
	// The others arrive; a short one is re-requested from where it
	// stopped, and the window moves on by what learnedTo gained.
	next := 11 + Position(catchupWindow)*10
	_, msgs = stepReady(t, c, s, catchupAnswer(11, 16, end))
	if diff := cmp.Diff([][2]Position{{16, 21}, {next, next + 10}}, catchupRanges(msgs)); diff != "" {
		t.Fatalf("rest of a short answer and refill (-want +got):\n%s", diff)
	}
	pending := [][2]Position{{next, next + 10}}
	for _, r := range append(want[1:len(want)-1], [2]Position{16, 21}) {
		_, msgs := stepReady(t, c, s, catchupAnswer(r[0], r[1], end))
		pending = append(pending, catchupRanges(msgs)...)
	}
	if want := last[1]; c.learnedTo != want {
		t.Fatalf("learnedTo %d after every answer of the window, want %d", c.learnedTo, want)
	}
	// Answer whatever is asked until the end.
	for i := 0; len(pending) > 0; i++ {
		if i > 100 {
			t.Fatalf("catch-up does not finish: learnedTo %d", c.learnedTo)
		}
		r := pending[0]
		pending = pending[1:]
		_, msgs := stepReady(t, c, s, catchupAnswer(r[0], min(r[1], end), end))
		pending = append(pending, catchupRanges(msgs)...)
	}
	if c.learnedTo != end {
		t.Fatalf("learnedTo %d, want %d", c.learnedTo, end)
	}
	if c.cu.active || len(c.cu.inflight) != 0 {
		t.Fatalf("catch-up still active with %v in flight after learning everything", c.cu.inflight)
	}
}

// Ranges whose requests or answers are lost are requested again from
// learnedTo once no answer made progress for a retry period.
func TestCatchupLostRangeRequestedAgain(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.LeaseTicks = 100
	c := newTestCore(t, cfg, s)
	const end = 100
	rs := openCatchupWindow(t, c, s, end)
	// Every answer but the first range's arrives: nothing above 11 drains.
	for _, r := range rs[1:] {
		stepReady(t, c, s, catchupAnswer(r[0], r[1], end))
	}
	if c.learnedTo != 11 {
		t.Fatalf("learnedTo %d with the range at 11 lost, want 11", c.learnedTo)
	}
	var again [][2]Position
	for range catchupWindow*cfg.RetryTicks + 1 {
		c.Tick()
		msgs, _ := drain(t, c, s)
		again = append(again, catchupRanges(msgs)...)
	}
	if len(again) == 0 || again[0][0] != 11 {
		t.Fatalf("after a retry period requests %v, want one from 11", again)
	}
	stepReady(t, c, s, catchupAnswer(again[0][0], again[0][1], end))
	if c.learnedTo < 11+Position(len(rs))*10 {
		t.Fatalf("learnedTo %d after the lost range came, want the window drained", c.learnedTo)
	}
}

// Found by the simulator (5 replicas, seed 5006): ranges of one span that lie
// below the responder's Begin are answered empty. The requester asks once
// from learnedTo past that Begin and jumps to the responder's snapshot.
func TestCatchupWindowBelowResponderBegin(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	const end = 200
	openCatchupWindow(t, c, s, end)
	// Meanwhile the responder truncated its log at 150.
	empty := catchupAnswer(0, 0, end)
	empty.Begin = 150
	var again [][2]Position
	for range catchupWindow {
		_, msgs := stepReady(t, c, s, empty)
		again = append(again, catchupRanges(msgs)...)
	}
	if diff := cmp.Diff([][2]Position{{11, end}}, again); diff != "" {
		t.Fatalf("requests after empty answers below Begin (-want +got):\n%s", diff)
	}
	m := testMembership(1, 2, 3)
	jump := catchupAnswer(150, 160, end)
	jump.Actions[0].Entry = Entry{Type: EntrySnapshot, Data: []byte("s")}
	jump.Begin, jump.Config, jump.Position = 150, &m, 0
	stepReady(t, c, s, jump)
	if st := c.Status(); st.Begin != 150 || c.learnedTo != 160 {
		t.Fatalf("begin %d, learnedTo %d after the snapshot answer, want 150 and 160", st.Begin, c.learnedTo)
	}
}

// rangeCounter is a Storage that counts the core's point and range reads.
type rangeCounter struct {
	*memStore
	action, actions int
}

func (r *rangeCounter) Action(p Position) (Action, bool, error) {
	r.action++
	return r.memStore.Action(p)
}

func (r *rangeCounter) Actions(from, to Position, maxBytes int) ([]Action, error) {
	r.actions++
	return r.memStore.Actions(from, to, maxBytes)
}

// Found profiling regent log bench -catchup: answers that arrive out of
// order raise next above the gaps they leave, and learning a gap's
// positions then read storage once per position, the largest cost of a
// catch-up. An answer is learned with one range read at most, and what
// storage holds in a gap (an accept with a higher promise) is still kept.
func TestCatchupReadsStorageOncePerAnswer(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	// An accept at 25, not learned, under a promise above the learned
	// value's: the learned action must keep the promise.
	high := Proposal{9, 3}
	s.acts[25] = Action{Position: 25, Promised: high, Performed: Proposal{2, 2}, Entry: Entry{Type: EntryAppend, Data: []byte("25")}}
	rc := &rangeCounter{memStore: s}
	c, err := New(testConfig(1), rc)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	const end = 200
	rs := openCatchupWindow(t, c, s, end)
	// Answer the window from its last range down: every answer but the
	// last lands above a gap, the later ones below next.
	rc.action, rc.actions = 0, 0
	answers := 0
	for i := len(rs) - 1; i >= 0; i-- {
		stepReady(t, c, s, catchupAnswer(rs[i][0], rs[i][1], end))
		answers++
	}
	if want := rs[len(rs)-1][1]; c.learnedTo != want {
		t.Fatalf("learnedTo %d after the window's answers, want %d", c.learnedTo, want)
	}
	if invariantsEnabled {
		// The invariant checks read storage per position themselves.
		t.Log("read counts not checked: built with -tags invariants")
	} else if rc.action != 0 || rc.actions > answers {
		t.Errorf("%d single reads and %d range reads for %d answers, want none and at most %d", rc.action, rc.actions, answers, answers)
	}
	a := s.acts[25]
	if !a.Learned || a.Promised != high || string(a.Entry.Data) != "25" {
		t.Errorf("action at 25 after catch-up: %+v, want learned, promised %v, data 25", a, high)
	}
}

// Found by regent log bench -catchup on a loaded machine (7,075 requests and
// 6.9 M positions sent for 200,000): an answer that matches no range in
// flight (a duplicate, or one to a request from before a restart) dropped
// every range below it from the window, and the window was refilled past
// them, so requests in flight grew with every such answer. It is learned,
// and changes nothing else.
func TestCatchupStaleAnswerKeepsWindow(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	const end = 500
	rs := openCatchupWindow(t, c, s, end)
	// The first range is answered; its answer comes again.
	_, msgs := stepReady(t, c, s, catchupAnswer(rs[0][0], rs[0][1], end))
	refill := catchupRanges(msgs)
	if len(refill) != 1 {
		t.Fatalf("requests after the first range's answer: %v, want one", refill)
	}
	want := map[Position]Position{}
	for _, r := range append(rs[1:], refill...) {
		want[r[0]] = r[1]
	}
	tests := []struct {
		name string
		m    Message
	}{
		{"duplicate", catchupAnswer(rs[0][0], rs[0][1], end)},
		{"inside a range in flight", catchupAnswer(rs[3][0]+4, rs[3][1], end)},
		{"from before a restart, above the window", catchupAnswer(400, 410, end)},
	}
	for _, tt := range tests {
		_, msgs := stepReady(t, c, s, tt.m)
		if got := catchupRanges(msgs); len(got) != 0 {
			t.Errorf("%s: requests %v, want none", tt.name, got)
		}
		if diff := cmp.Diff(want, c.cu.inflight); diff != "" {
			t.Errorf("%s: ranges in flight (-want +got):\n%s", tt.name, diff)
		}
	}
}

// Found with TestCatchupStaleAnswerKeepsWindow: while the lowest range is
// not answered, the window must not move past learnedTo + catchupWindow
// ranges, or a lost range lets learned actions pile up above the gap (in
// Core.ahead, in memory) until the end of the log. Answers of the other
// ranges still count as progress: no restart while they come.
func TestCatchupWindowAnchoredAtLearnedTo(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.LeaseTicks = 100
	c := newTestCore(t, cfg, s)
	const end = 500
	rs := openCatchupWindow(t, c, s, end)
	limit := Position(11 + catchupWindow*10)
	for _, r := range rs[1:] {
		// Almost a retry period passes before each answer.
		for range cfg.RetryTicks - 1 {
			c.Tick()
			if msgs, _ := drain(t, c, s); len(catchupRanges(msgs)) > 0 {
				t.Fatalf("requests %v while answers come, want none", catchupRanges(msgs))
			}
		}
		_, msgs := stepReady(t, c, s, catchupAnswer(r[0], r[1], end))
		for _, q := range catchupRanges(msgs) {
			if q[0] >= limit {
				t.Errorf("request %v with learnedTo %d, want none from %d up", q, c.learnedTo, limit)
			}
		}
	}
	// The lowest range comes: the window moves on.
	_, msgs := stepReady(t, c, s, catchupAnswer(rs[0][0], rs[0][1], end))
	if c.learnedTo != limit {
		t.Fatalf("learnedTo %d, want %d", c.learnedTo, limit)
	}
	if got := catchupRanges(msgs); len(got) != catchupWindow {
		t.Errorf("requests after the gap closed: %v, want %d", got, catchupWindow)
	}
}

// After a restart (the lowest range lost), ranges already learned above
// learnedTo are not asked for again.
func TestCatchupRestartSkipsLearnedAhead(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.LeaseTicks = 100
	c := newTestCore(t, cfg, s)
	const end = 500
	rs := openCatchupWindow(t, c, s, end)
	for _, r := range rs[1:] {
		stepReady(t, c, s, catchupAnswer(r[0], r[1], end))
	}
	var again [][2]Position
	for range catchupWindow*cfg.RetryTicks + 1 {
		c.Tick()
		msgs, _ := drain(t, c, s)
		again = append(again, catchupRanges(msgs)...)
	}
	if len(again) == 0 || again[0] != rs[0] {
		t.Fatalf("after a retry period requests %v, want %v first", again, rs[0])
	}
	for _, r := range again[1:] {
		if r[1] > rs[1][0] && r[0] < rs[len(rs)-1][1] {
			t.Errorf("request %v again, learned ahead in %v", r, rs[1:])
		}
	}
}

// Found by regent log bench -catchup on a loaded machine: a responder
// answers a window's requests one after another, and a replica whose own
// saves stall sees many ticks pass at once, so a retry period (RetryTicks)
// without an answer is no sign of a lost request; restarting then sent the
// window again while the first was still being answered. Catch-up waits
// catchupWindow retry periods.
func TestCatchupSlowAnswerNoRestart(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.LeaseTicks = 1000
	c := newTestCore(t, cfg, s)
	const end = 500
	rs := openCatchupWindow(t, c, s, end)
	for i := range catchupWindow*cfg.RetryTicks + 1 {
		c.Tick()
		msgs, _ := drain(t, c, s)
		if got := catchupRanges(msgs); len(got) > 0 {
			if i < catchupWindow*cfg.RetryTicks-1 {
				t.Fatalf("requests %v %d ticks after the last answer, want none before %d", got, i+1, catchupWindow*cfg.RetryTicks)
			}
			if got[0] != rs[0] {
				t.Fatalf("requests %v after the timeout, want %v first", got, rs[0])
			}
			return
		}
	}
	t.Fatalf("no request again %d ticks after the last answer", catchupWindow*cfg.RetryTicks+1)
}

// Catchup reports a catch-up's beginning, target, progress and requests in
// flight while it runs; a restart after lost answers and a raised target
// keep its beginning; it is the zero value before and after.
func TestCatchupStatus(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.LeaseTicks = 100
	c := newTestCore(t, cfg, s)
	check := func(when string, want CatchupStatus) {
		t.Helper()
		if diff := cmp.Diff(want, c.Catchup()); diff != "" {
			t.Fatalf("%s: Catchup() (-want +got):\n%s", when, diff)
		}
	}
	check("before", CatchupStatus{})
	const end = 200
	step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: end})
	check("first request", CatchupStatus{Active: true, Peer: 2, From: 1, Target: end, LearnedTo: 1, Requests: 1})
	_, msgs := stepReady(t, c, s, catchupAnswer(1, 11, end))
	st := CatchupStatus{Active: true, Peer: 2, From: 1, Target: end, LearnedTo: 11, Requests: catchupWindow}
	check("first answer", st)
	if st.Done() != 10 || st.Total() != end-1 {
		t.Fatalf("Done %d Total %d, want 10 and %d", st.Done(), st.Total(), end-1)
	}
	// Every answer is lost; the catch-up starts again from learnedTo, from
	// the same beginning.
	if n := len(catchupRanges(msgs)); n != catchupWindow {
		t.Fatalf("%d requests, want %d", n, catchupWindow)
	}
	for range catchupWindow*cfg.RetryTicks + 1 {
		c.Tick()
		drain(t, c, s)
	}
	got := c.Catchup()
	if !got.Active || got.From != 1 || got.LearnedTo != 11 || got.Requests == 0 {
		t.Fatalf("after a restart Catchup() = %+v, want active from 1 at 11 with requests in flight", got)
	}
	// The peer learned more: the target rises, the beginning stays.
	const end2 = 250
	step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: end2})
	if got := c.Catchup(); got.Target != end2 || got.From != 1 {
		t.Fatalf("after a raised target Catchup() = %+v, want target %d from 1", got, end2)
	}
	// Answer from learnedTo until the end.
	for i := 0; c.learnedTo < end2; i++ {
		if i > 200 {
			t.Fatalf("catch-up does not finish: learnedTo %d", c.learnedTo)
		}
		p := c.learnedTo
		stepReady(t, c, s, catchupAnswer(p, min(p+10, end2), end2))
		if got := c.Catchup(); c.learnedTo < end2 && (got.LearnedTo != c.learnedTo || got.From != 1) {
			t.Fatalf("at %d Catchup() = %+v", c.learnedTo, got)
		}
	}
	check("after", CatchupStatus{})
	// The next catch-up begins where this one ended; the span is known, so
	// its 20 positions take two requests.
	step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: end2 + 20})
	check("next catch-up", CatchupStatus{Active: true, Peer: 2, From: end2, Target: end2 + 20, LearnedTo: end2, Requests: 2})
}
