package replog

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog/paxos"
)

// CatchupProgress is the progress of a catch-up: an EMPTY, RECOVERING or
// lagging replica fetching learned entries in batches from a VOTING replica,
// up to the highest learned position that replica reported (see
// [paxos.Core.Catchup]). Every field but LearnedTotal is zero while no
// catch-up is in progress.
type CatchupProgress struct {
	// Active is true from the catch-up's first request until the local
	// replica learned every position below Target (or the catch-up stopped
	// short of it for catchupLogInterval: another peer became coordinator,
	// this replica did, or the peer refused).
	Active bool
	// Peer is the replica asked for learned entries.
	Peer paxos.ReplicaID
	// From is the local learned position when the catch-up began, Target
	// the position it catches up to, LearnedTo the local learned position
	// now: Done of Total positions are learned.
	From, Target, LearnedTo paxos.Position
	// Requests is the number of catch-up requests in flight.
	Requests int
	// Started is when the node saw the catch-up begin.
	Started time.Time
	// Rate is the positions learned per second over the last progress
	// interval (about 5 s), or since Started before the first interval
	// ended; zero until a second has passed.
	Rate float64
	// ETA is the time left at Rate; zero while Rate is.
	ETA time.Duration
	// LearnedTotal counts the positions learned while catching up since
	// the node started, over every catch-up: a counter to take a rate of.
	LearnedTotal uint64
}

// Done returns the positions learned since the catch-up began.
func (p CatchupProgress) Done() uint64 {
	if to := min(p.LearnedTo, p.Target); to > p.From {
		return uint64(to - p.From)
	}
	return 0
}

// Total returns the positions the catch-up covers, from its beginning to its
// target.
func (p CatchupProgress) Total() uint64 {
	if p.Target < p.From {
		return 0
	}
	return uint64(p.Target - p.From)
}

// Percent returns Done as a percentage of Total, rounded down; zero when
// no catch-up is in progress.
func (p CatchupProgress) Percent() int {
	if p.Total() == 0 {
		return 0
	}
	return int(p.Done() * 100 / p.Total())
}

const (
	// catchupLogInterval is how often a catch-up's progress is logged, and
	// the interval its Rate is measured over.
	catchupLogInterval = 5 * time.Second
	// catchupRateAfter is how long a catch-up runs before its Rate is
	// estimated: a rate over a few milliseconds says little.
	catchupRateAfter = time.Second
	// A catch-up is logged at Info once it covers catchupLogPositions or
	// has run for catchupQuiet: a follower that missed a few learned
	// broadcasts catches up in milliseconds, many times a day, and such
	// catch-ups are logged at Trace only.
	catchupLogPositions = 10_000
	catchupQuiet        = 2 * time.Second
)

// catchupProgress follows the core's catch-up from the driver goroutine,
// logs its start, its progress every catchupLogInterval and its end, and
// measures its rate. The clock is the caller's: observe takes the time.
type catchupProgress struct {
	log hclog.Logger
	cur CatchupProgress // the catch-up followed; Active false when none
	// logged is true once cur's start was logged at Info (its progress and
	// end are then logged at Info too).
	logged bool
	// lastAt and lastLearned are the last progress sample: Rate is
	// measured from it.
	lastAt      time.Time
	lastLearned paxos.Position
	// pausedAt is when the core's catch-up stopped short of the target
	// (a timeout or a refusal, restarted at a later tick); zero while it
	// runs.
	pausedAt time.Time
	// counted is the learned position up to which LearnedTotal counts.
	counted paxos.Position
	total   uint64
}

func newCatchupProgress(log hclog.Logger) *catchupProgress {
	return &catchupProgress{log: log}
}

// observe takes the core's catch-up status and learned position at now and
// returns the progress to publish in [Status]. It is called from the driver
// goroutine after every Ready, so it allocates nothing on its common path.
func (p *catchupProgress) observe(now time.Time, cs paxos.CatchupStatus, learnedTo paxos.Position) CatchupProgress {
	if !cs.Active {
		if !p.cur.Active {
			return CatchupProgress{LearnedTotal: p.total}
		}
		p.count(learnedTo)
		p.cur.LearnedTo = learnedTo
		if learnedTo >= p.cur.Target {
			p.finish(now)
			return CatchupProgress{LearnedTotal: p.total}
		}
		// Stopped short of the target: the core starts it again at a
		// later tick, from the same beginning, unless it has no peer to
		// ask (this replica was elected, or no coordinator is known).
		if p.pausedAt.IsZero() {
			p.pausedAt = now
		}
		if now.Sub(p.pausedAt) >= catchupLogInterval {
			p.stop(now)
			return CatchupProgress{LearnedTotal: p.total}
		}
		p.cur.Requests = 0
		p.cur.LearnedTotal = p.total
		return p.cur
	}
	if p.cur.Active && cs.From != p.cur.From {
		// The catch-up followed ended (unseen) and another began.
		p.count(min(learnedTo, p.cur.Target))
		p.cur.LearnedTo = min(learnedTo, p.cur.Target)
		p.finish(now)
	}
	if !p.cur.Active {
		p.begin(now, cs)
	}
	p.pausedAt = time.Time{}
	p.count(learnedTo)
	p.cur.Peer, p.cur.Target, p.cur.LearnedTo, p.cur.Requests = cs.Peer, cs.Target, learnedTo, cs.Requests
	if !p.logged && (p.cur.Total() >= catchupLogPositions || now.Sub(p.cur.Started) >= catchupQuiet) {
		p.logged = true
		p.log.Info("catching up", "peer", p.cur.Peer, "from", p.cur.From, "target", p.cur.Target,
			"positions", p.cur.Total(), "done", p.cur.Done())
	}
	if d := now.Sub(p.lastAt); d >= catchupLogInterval {
		p.cur.Rate = float64(learnedTo-p.lastLearned) / d.Seconds()
		p.lastAt, p.lastLearned = now, learnedTo
		p.cur.ETA = p.eta()
		if p.logged {
			p.log.Info("catch-up progress", "peer", p.cur.Peer, "done", p.cur.Done(), "total", p.cur.Total(),
				"percent", p.cur.Percent(), "positions_per_second", int64(p.cur.Rate), "eta", p.cur.ETA)
		}
	} else if p.lastAt.Equal(p.cur.Started) && now.Sub(p.cur.Started) >= catchupRateAfter {
		// No interval has ended yet: the mean since the start.
		p.cur.Rate = float64(p.cur.Done()) / now.Sub(p.cur.Started).Seconds()
		p.cur.ETA = p.eta()
	}
	p.cur.LearnedTotal = p.total
	return p.cur
}

// begin starts following the catch-up cs at now.
func (p *catchupProgress) begin(now time.Time, cs paxos.CatchupStatus) {
	p.cur = CatchupProgress{Active: true, Peer: cs.Peer, From: cs.From, Target: cs.Target, Started: now}
	p.logged = false
	p.lastAt, p.lastLearned = now, cs.From
	p.pausedAt = time.Time{}
	p.counted = max(p.counted, cs.From)
}

// count adds the positions learned up to learnedTo to LearnedTotal.
func (p *catchupProgress) count(learnedTo paxos.Position) {
	if learnedTo > p.counted {
		p.total += uint64(learnedTo - p.counted)
		p.counted = learnedTo
	}
}

// eta is the time left at the current rate, rounded to a second above a
// minute and to a millisecond below.
func (p *catchupProgress) eta() time.Duration {
	left := p.cur.Total() - p.cur.Done()
	if p.cur.Rate <= 0 {
		return 0
	}
	d := time.Duration(float64(left) / p.cur.Rate * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// finish logs the end of the catch-up followed, which reached its target,
// and stops following it.
func (p *catchupProgress) finish(now time.Time) {
	d := now.Sub(p.cur.Started)
	rate := 0.0
	if d > 0 {
		rate = float64(p.cur.Done()) / d.Seconds()
	}
	args := []any{"peer", p.cur.Peer, "positions", p.cur.Done(), "duration", d, "positions_per_second", int64(rate)}
	if p.logged {
		p.log.Info("caught up", args...)
	} else {
		p.log.Trace("caught up", args...)
	}
	p.cur, p.logged = CatchupProgress{}, false
}

// stop logs a catch-up that stopped short of its target, and stops
// following it; the next one is followed afresh.
func (p *catchupProgress) stop(now time.Time) {
	args := []any{"peer", p.cur.Peer, "done", p.cur.Done(), "total", p.cur.Total(), "learned_to", p.cur.LearnedTo,
		"target", p.cur.Target, "duration", now.Sub(p.cur.Started)}
	if p.logged {
		p.log.Info("catch-up stopped short of its target", args...)
	} else {
		p.log.Trace("catch-up stopped short of its target", args...)
	}
	p.cur, p.logged = CatchupProgress{}, false
}
