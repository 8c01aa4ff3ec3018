package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Event is a supervision event hooks can run on.
type Event int

const (
	// EventExited means the child exited without being asked to.
	EventExited Event = iota + 1
	// EventBackoff means the child will be restarted after a delay.
	EventBackoff
	// EventFatal means the child failed permanently (exit 78); no restart.
	EventFatal
	// EventGaveUp means the restart budget is spent; the supervisor exits.
	EventGaveUp
	// EventRecovered means a restarted child became ready again.
	EventRecovered
)

var eventNames = [...]string{
	EventExited:    "exited",
	EventBackoff:   "backoff",
	EventFatal:     "fatal",
	EventGaveUp:    "gave_up",
	EventRecovered: "recovered",
}

// String returns the event's name as written in the configuration.
func (e Event) String() string {
	if e >= EventExited && e <= EventRecovered {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// ParseEvent returns the event named s (exited, backoff, fatal, gave_up,
// recovered).
func ParseEvent(s string) (Event, error) {
	for e := EventExited; e <= EventRecovered; e++ {
		if eventNames[e] == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown event %q (want one of %s)", s, strings.Join(eventNames[1:], ", "))
}

// Notice is what a hook learns about one event.
type Notice struct {
	// Event is what happened.
	Event Event
	// Exit is how the child last ended (zero for recovered before any exit).
	Exit Exit
	// Restarts is how many times the child has been restarted.
	Restarts int
	// Reason is the child's last exit reason, or the supervisor's.
	Reason string
	// Pid is the last child's process ID.
	Pid int
	// Backoff is the delay before the next start (backoff only).
	Backoff time.Duration
	// Tail is the child's last output lines, oldest first.
	Tail []string
	// Suppressed is how many events this hook dropped (rate limit or full
	// queue) since its last run.
	Suppressed int64
}

// env returns the REGENT_* variables for n.
func (n Notice) env() []string {
	sig := ""
	if n.Exit.Signal != 0 {
		sig = signalName(n.Exit.Signal)
	}
	code := ""
	if n.Exit.Signal == 0 && !n.Exit.StartFailed && n.Event != EventRecovered {
		code = strconv.Itoa(n.Exit.Code)
	}
	return []string{
		"REGENT_EVENT=" + n.Event.String(),
		"REGENT_EXIT_CODE=" + code,
		"REGENT_SIGNAL=" + sig,
		"REGENT_RESTARTS=" + strconv.Itoa(n.Restarts),
		"REGENT_REASON=" + strings.ReplaceAll(n.Reason, "\n", " "),
		"REGENT_PID=" + strconv.Itoa(n.Pid),
		"REGENT_BACKOFF=" + n.Backoff.String(),
		"REGENT_SUPPRESSED=" + strconv.FormatInt(n.Suppressed, 10),
	}
}

// hookFunc runs one hook for one notice and returns when it is done.
type hookFunc func(ctx context.Context, h Hook, n Notice) error

// hookQueue is how many notices one hook may have waiting; a burst of
// events beyond it is dropped and counted rather than blocking supervision.
const hookQueue = 8

// hookSet runs every hook on its own goroutine, so a slow or failing hook
// never blocks the supervision loop or another hook.
type hookSet struct {
	workers []*hookWorker
	wg      sync.WaitGroup
}

type hookWorker struct {
	hook     Hook
	events   map[Event]bool // nil = all
	ch       chan Notice
	dropped  atomic.Int64
	run      hookFunc
	timeout  time.Duration
	burst    int
	interval time.Duration
	log      hclog.Logger
}

// startHooks starts one goroutine per hook; close stops and waits for them.
func startHooks(ctx context.Context, cfg *Config, run hookFunc, log hclog.Logger) *hookSet {
	hs := &hookSet{}
	for _, h := range cfg.Hooks {
		w := &hookWorker{
			hook:     h,
			ch:       make(chan Notice, hookQueue),
			run:      run,
			timeout:  cfg.HookTimeout,
			burst:    cfg.HookBurst,
			interval: cfg.HookInterval,
			log:      log.With("hook", h.Name),
		}
		if len(h.Events) > 0 {
			w.events = make(map[Event]bool)
			for _, e := range h.Events {
				w.events[e] = true
			}
		}
		hs.workers = append(hs.workers, w)
		hs.wg.Add(1)
		go func() {
			defer hs.wg.Done()
			w.loop(context.WithoutCancel(ctx))
		}()
	}
	return hs
}

// emit queues n for every hook that wants its event. It never blocks.
func (hs *hookSet) emit(n Notice) {
	for _, w := range hs.workers {
		if w.events != nil && !w.events[n.Event] {
			continue
		}
		select {
		case w.ch <- n:
		default:
			w.dropped.Add(1)
			w.log.Warn("hook queue full, event dropped", "event", n.Event.String())
		}
	}
}

// close lets every hook finish what is queued (each run bounded by the hook
// timeout) and waits for them.
func (hs *hookSet) close() {
	for _, w := range hs.workers {
		close(w.ch)
	}
	hs.wg.Wait()
}

func (w *hookWorker) loop(ctx context.Context) {
	var starts []time.Time
	for n := range w.ch {
		now := time.Now()
		kept := starts[:0]
		for _, t := range starts {
			if now.Sub(t) < w.interval {
				kept = append(kept, t)
			}
		}
		starts = kept
		// fatal and gave_up end the supervisor, so they happen once and
		// are the events an operator must not miss: never rate-limited.
		final := n.Event == EventFatal || n.Event == EventGaveUp
		if len(starts) >= w.burst && !final {
			w.dropped.Add(1)
			w.log.Warn("hook rate limited, event dropped", "event", n.Event.String())
			continue
		}
		starts = append(starts, now)
		n.Suppressed = w.dropped.Swap(0)
		rctx, cancel := context.WithTimeout(ctx, w.timeout)
		err := w.run(rctx, w.hook, n)
		cancel()
		if err != nil {
			w.log.Error("hook failed", "event", n.Event.String(), "error", err)
			continue
		}
		w.log.Debug("hook ran", "event", n.Event.String())
	}
}

// hookOutputMax bounds how much of a hook's output is kept for the log.
const hookOutputMax = 4096

// execHook runs h's command with n in its environment and n.Tail on stdin,
// in its own process group, which is killed when ctx ends.
func execHook(ctx context.Context, h Hook, n Notice) error {
	cmd := exec.CommandContext(ctx, h.Exec[0], h.Exec[1:]...)
	_, env := parseSystemdEnv(os.Environ(), os.Getpid())
	cmd.Env = append(env, n.env()...)
	var in strings.Builder
	for _, l := range n.Tail {
		in.WriteString(l)
		in.WriteByte('\n')
	}
	cmd.Stdin = strings.NewReader(in.String())
	out := &limitedBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return fmt.Errorf("run %s: %w: %s", h.Exec[0], err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and discards the
// rest, so a chatty hook cannot grow the supervisor's memory.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
