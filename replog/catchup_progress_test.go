package replog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog/paxos"
)

// logLine is one JSON log line, the fields a test looks at.
type logLine map[string]any

// progressLogger returns a JSON logger at level into a buffer, and a
// function returning the lines logged since it was last called.
func progressLogger(level hclog.Level) (hclog.Logger, func(t *testing.T) []logLine) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: level, JSONFormat: true})
	return log, func(t *testing.T) []logLine {
		t.Helper()
		var out []logLine
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var l logLine
			if err := dec.Decode(&l); err != nil {
				t.Fatalf("decode log line: %v", err)
			}
			delete(l, "@timestamp")
			out = append(out, l)
		}
		buf.Reset()
		return out
	}
}

// fields keeps the named fields of each line.
func fields(ls []logLine, names ...string) []logLine {
	var out []logLine
	for _, l := range ls {
		k := logLine{}
		for _, n := range names {
			if v, ok := l[n]; ok {
				k[n] = v
			}
		}
		out = append(out, k)
	}
	return out
}

func active(peer paxos.ReplicaID, from, target, learnedTo paxos.Position, requests int) paxos.CatchupStatus {
	return paxos.CatchupStatus{Active: true, Peer: peer, From: from, Target: target, LearnedTo: learnedTo, Requests: requests}
}

// A long catch-up logs its start, its progress every interval with the rate
// over that interval and the time left, and its end with the mean rate.
func TestCatchupProgressLogsStartProgressEnd(t *testing.T) {
	t.Parallel()
	log, lines := progressLogger(hclog.Info)
	p := newCatchupProgress(log)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	got := p.observe(at(0), active(2, 0, 1_000_000, 0, 1), 0)
	want := CatchupProgress{Active: true, Peer: 2, From: 0, Target: 1_000_000, Requests: 1, Started: t0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("at the start (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]logLine{{"@level": "info", "@message": "catching up", "peer": 2.0, "from": 0.0, "target": 1e6, "positions": 1e6, "done": 0.0}}, lines(t)); diff != "" {
		t.Fatalf("start log (-want +got):\n%s", diff)
	}
	// Before a second has passed no rate is estimated; after, the mean
	// since the start, with no log.
	if got := p.observe(at(500*time.Millisecond), active(2, 0, 1_000_000, 20_000, 8), 20_000); got.Rate != 0 || got.ETA != 0 {
		t.Fatalf("at 0.5 s rate %v ETA %v, want none", got.Rate, got.ETA)
	}
	got = p.observe(at(2*time.Second), active(2, 0, 1_000_000, 100_000, 8), 100_000)
	if got.Rate != 50_000 || got.ETA != 18*time.Second || got.Percent() != 10 {
		t.Fatalf("at 2 s rate %v ETA %v percent %d, want 50000/s, 18s and 10", got.Rate, got.ETA, got.Percent())
	}
	if l := lines(t); len(l) != 0 {
		t.Fatalf("logged %v between intervals", l)
	}
	// At 5 s: 250,000 in 5 s. At 10 s: 310,000 more in 5 s, 62,000/s,
	// 440,000 left.
	p.observe(at(5*time.Second), active(2, 0, 1_000_000, 250_000, 8), 250_000)
	got = p.observe(at(10*time.Second), active(2, 0, 1_000_000, 560_000, 8), 560_000)
	want = CatchupProgress{Active: true, Peer: 2, Target: 1_000_000, LearnedTo: 560_000, Requests: 8, Started: t0,
		Rate: 62_000, ETA: 7097 * time.Millisecond, LearnedTotal: 560_000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("at 10 s (-want +got):\n%s", diff)
	}
	wantLines := []logLine{
		{"@message": "catch-up progress", "done": 250_000.0, "total": 1e6, "percent": 25.0, "positions_per_second": 50_000.0, "eta": float64(15 * time.Second)},
		{"@message": "catch-up progress", "done": 560_000.0, "total": 1e6, "percent": 56.0, "positions_per_second": 62_000.0, "eta": float64(7097 * time.Millisecond)},
	}
	if diff := cmp.Diff(wantLines, fields(lines(t), "@message", "done", "total", "percent", "positions_per_second", "eta")); diff != "" {
		t.Fatalf("progress logs (-want +got):\n%s", diff)
	}
	// The target is reached: the core's catch-up is over.
	got = p.observe(at(20*time.Second), paxos.CatchupStatus{}, 1_000_000)
	if diff := cmp.Diff(CatchupProgress{LearnedTotal: 1_000_000}, got); diff != "" {
		t.Fatalf("after (-want +got):\n%s", diff)
	}
	wantLines = []logLine{{"@level": "info", "@message": "caught up", "peer": 2.0, "positions": 1e6, "duration": float64(20 * time.Second), "positions_per_second": 50_000.0}}
	if diff := cmp.Diff(wantLines, lines(t)); diff != "" {
		t.Fatalf("end log (-want +got):\n%s", diff)
	}
}

// A short catch-up (a follower that missed a few learned broadcasts) logs
// nothing at Info; one of few positions that runs long is logged once it
// has run for catchupQuiet.
func TestCatchupProgressQuietWhenShort(t *testing.T) {
	t.Parallel()
	log, lines := progressLogger(hclog.Info)
	p := newCatchupProgress(log)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.observe(t0, active(3, 100, 140, 100, 1), 100)
	p.observe(t0.Add(3*time.Millisecond), paxos.CatchupStatus{}, 140)
	if l := lines(t); len(l) != 0 {
		t.Fatalf("a 40-position catch-up logged %v at Info", l)
	}
	p.observe(t0.Add(time.Second), active(3, 140, 200, 140, 1), 140)
	if l := lines(t); len(l) != 0 {
		t.Fatalf("a short catch-up logged %v at Info after 1 s", l)
	}
	p.observe(t0.Add(time.Second+catchupQuiet), active(3, 140, 200, 150, 1), 150)
	want := []logLine{{"@message": "catching up", "from": 140.0, "target": 200.0, "done": 10.0}}
	if diff := cmp.Diff(want, fields(lines(t), "@message", "from", "target", "done")); diff != "" {
		t.Fatalf("slow short catch-up (-want +got):\n%s", diff)
	}
	if got := p.observe(t0.Add(10*time.Second), paxos.CatchupStatus{}, 200); got.LearnedTotal != 100 {
		t.Fatalf("LearnedTotal %d over two catch-ups of 40 and 60, want 100", got.LearnedTotal)
	}
}

// A catch-up the core restarts (a timeout, a refusal) is one catch-up: it
// keeps its beginning and start time, and is not logged again. One that
// stays stopped short of its target for an interval is logged as stopped,
// and the next is followed afresh.
func TestCatchupProgressPauseAndStop(t *testing.T) {
	t.Parallel()
	log, lines := progressLogger(hclog.Info)
	p := newCatchupProgress(log)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	p.observe(at(0), active(2, 10, 50_010, 10, 1), 10)
	lines(t)
	got := p.observe(at(time.Second), paxos.CatchupStatus{}, 20_010)
	want := CatchupProgress{Active: true, Peer: 2, From: 10, Target: 50_010, LearnedTo: 20_010, Started: t0, LearnedTotal: 20_000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("paused (-want +got):\n%s", diff)
	}
	got = p.observe(at(2*time.Second), active(3, 10, 60_010, 20_010, 8), 20_010)
	if got.From != 10 || got.Started != t0 || got.Peer != 3 || got.Target != 60_010 {
		t.Fatalf("resumed: %+v, want the same beginning and start, the new peer and target", got)
	}
	if l := lines(t); len(l) != 0 {
		t.Fatalf("a restarted catch-up logged %v", l)
	}
	p.observe(at(3*time.Second), paxos.CatchupStatus{}, 30_010)
	p.observe(at(3*time.Second+catchupLogInterval-time.Millisecond), paxos.CatchupStatus{}, 30_010)
	if l := lines(t); len(l) != 0 {
		t.Fatalf("paused for less than an interval, logged %v", l)
	}
	got = p.observe(at(3*time.Second+catchupLogInterval), paxos.CatchupStatus{}, 30_010)
	if diff := cmp.Diff(CatchupProgress{LearnedTotal: 30_000}, got); diff != "" {
		t.Fatalf("stopped (-want +got):\n%s", diff)
	}
	wantLines := []logLine{{"@message": "catch-up stopped short of its target", "done": 30_000.0, "total": 60_000.0, "target": 60_010.0}}
	if diff := cmp.Diff(wantLines, fields(lines(t), "@message", "done", "total", "target")); diff != "" {
		t.Fatalf("stop log (-want +got):\n%s", diff)
	}
	got = p.observe(at(time.Minute), active(2, 10, 60_010, 30_010, 1), 30_010)
	if got.Started != at(time.Minute) || got.Done() != 30_000 {
		t.Fatalf("after a stop %+v, want one started now, 30000 done", got)
	}
	if diff := cmp.Diff([]logLine{{"@message": "catching up"}}, fields(lines(t), "@message")); diff != "" {
		t.Fatalf("next catch-up (-want +got):\n%s", diff)
	}
}

// A catch-up that ended unseen (between two observations) and was followed by
// another is ended, counted and logged before the next is followed.
func TestCatchupProgressEndUnseen(t *testing.T) {
	t.Parallel()
	log, lines := progressLogger(hclog.Info)
	p := newCatchupProgress(log)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.observe(t0, active(2, 0, 20_000, 0, 1), 0)
	got := p.observe(t0.Add(4*time.Second), active(2, 20_000, 20_500, 20_100, 1), 20_100)
	want := CatchupProgress{Active: true, Peer: 2, From: 20_000, Target: 20_500, LearnedTo: 20_100, Requests: 1, Started: t0.Add(4 * time.Second), LearnedTotal: 20_100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	wantLines := []logLine{{"@message": "catching up", "target": 20_000.0, "positions": 20_000.0}, {"@message": "caught up", "positions": 20_000.0, "duration": float64(4 * time.Second)}}
	if diff := cmp.Diff(wantLines, fields(lines(t), "@message", "target", "positions", "duration")); diff != "" {
		t.Fatalf("logs (-want +got):\n%s", diff)
	}
}
