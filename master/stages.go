package master

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Write stages, the values of the stage label of
// regent_registrar_write_stage_seconds. Each is observed once per
// operation the leader's registrar proposed (a batch of n operations
// observes its batch-wide stages n times), except stageSlot, observed once
// per batch. Along one write they are, in order:
const (
	// stageQueue: submitted to the registrar → sealed into a batch. It
	// includes the wait for an in-flight slot of an operation that arrived
	// while every slot was busy.
	stageQueue = "queue"
	// stageSlot: the proposer holding a batch's first operation waited this
	// long for one of max_in_flight slots (per batch).
	stageSlot = "slot"
	// stageEncode: sealed → handed to the log (encoding the entry).
	stageEncode = "encode"
	// stageAppend: the log's Append call, until it returned (learned by a
	// quorum). Its return frees the in-flight slot.
	stageAppend = "append"
	// stageLearn: Append called → this master began applying the entry
	// (the log round as the registrar's reader sees it; it may end before
	// Append returns).
	stageLearn = "learn"
	// stageApply: applying the entry (the registry lock's wait included).
	stageApply = "apply"
	// stageReply: the result handed to the waiting request → the request's
	// goroutine running again (scheduling delay).
	stageReply = "reply"
)

// writeStages holds the registrar's stage timings and batch shape
// metrics. A nil *writeStages records nothing.
type writeStages struct {
	stage      *prometheus.HistogramVec
	queue      prometheus.Observer
	slot       prometheus.Observer
	encode     prometheus.Observer
	append     prometheus.Observer
	learn      prometheus.Observer
	apply      prometheus.Observer
	reply      prometheus.Observer
	batchOps   prometheus.Histogram
	batchBytes prometheus.Histogram
	inFlight   prometheus.Histogram
}

func newWriteStages() *writeStages {
	ws := &writeStages{
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regent_registrar_write_stage_seconds",
			Help: "Time a registry write spent in each stage on the leader (queue, slot, encode, append, learn, apply, reply), per operation (slot: per batch).",
			// 5µs .. ~13s by factors of 1.5: stages are from microseconds
			// (apply, reply) to milliseconds (append).
			Buckets: prometheus.ExponentialBuckets(5e-6, 1.5, 37),
		}, []string{"stage"}),
		batchOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_registrar_batch_operations",
			Help:    "Operations per log entry the leader's registrar wrote.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_registrar_batch_bytes",
			Help:    "Bytes per log entry the leader's registrar wrote.",
			Buckets: prometheus.ExponentialBuckets(64, 2, 16), // 64 B .. 2 MiB
		}),
		inFlight: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_registrar_batches_in_flight",
			Help:    "Batches being stored, this one included, when the leader's registrar sealed a batch.",
			Buckets: prometheus.LinearBuckets(1, 1, 32),
		}),
	}
	ws.queue = ws.stage.WithLabelValues(stageQueue)
	ws.slot = ws.stage.WithLabelValues(stageSlot)
	ws.encode = ws.stage.WithLabelValues(stageEncode)
	ws.append = ws.stage.WithLabelValues(stageAppend)
	ws.learn = ws.stage.WithLabelValues(stageLearn)
	ws.apply = ws.stage.WithLabelValues(stageApply)
	ws.reply = ws.stage.WithLabelValues(stageReply)
	return ws
}

func (ws *writeStages) collectors() []prometheus.Collector {
	return []prometheus.Collector{ws.stage, ws.batchOps, ws.batchBytes, ws.inFlight}
}

// observeN records d n times in o.
func observeN(o prometheus.Observer, d time.Duration, n int) {
	s := d.Seconds()
	for range n {
		o.Observe(s)
	}
}

// sealed records a batch of n operations sealed after waiting slot for an
// in-flight slot, with inFlight batches in flight counting it.
func (ws *writeStages) sealed(n int, slot time.Duration, inFlight int) {
	if ws == nil {
		return
	}
	ws.slot.Observe(slot.Seconds())
	ws.batchOps.Observe(float64(n))
	ws.inFlight.Observe(float64(inFlight))
}

// queued records one operation's wait from submission to its batch.
func (ws *writeStages) queued(d time.Duration) {
	if ws == nil {
		return
	}
	ws.queue.Observe(d.Seconds())
}

// handedOver records the encoding of a batch of n operations into size
// bytes.
func (ws *writeStages) handedOver(n, size int, encode time.Duration) {
	if ws == nil {
		return
	}
	ws.batchBytes.Observe(float64(size))
	observeN(ws.encode, encode, n)
}

// appended records the Append call of a batch of n operations.
func (ws *writeStages) appended(n int, d time.Duration) {
	if ws == nil {
		return
	}
	observeN(ws.append, d, n)
}

// applied records a batch of n operations learned after learn and applied
// in apply.
func (ws *writeStages) applied(n int, learn, apply time.Duration) {
	if ws == nil {
		return
	}
	observeN(ws.learn, learn, n)
	observeN(ws.apply, apply, n)
}

// replied records one operation's wake-up after its result was handed over.
func (ws *writeStages) replied(d time.Duration) {
	if ws == nil {
		return
	}
	ws.reply.Observe(d.Seconds())
}
