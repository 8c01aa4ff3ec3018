package supervisor

import (
	"context"
	"sync"
	"syscall"
	"time"
)

// fakeLauncher starts fakeProcs whose behaviour a test scripts: behave runs
// on its own goroutine for the i-th start (from 0) and must return once the
// process is done.
type fakeLauncher struct {
	behave func(i int, p *fakeProc)

	mu    sync.Mutex
	procs []*fakeProc
}

func (l *fakeLauncher) Start(ctx context.Context) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.procs); n > 0 {
		select {
		case <-l.procs[n-1].done:
		default:
			panic("fake launcher: start before the previous child was reaped")
		}
	}
	p := &fakeProc{
		pid:     1000 + len(l.procs),
		started: time.Now(),
		notify:  make(chan Message),
		done:    make(chan struct{}),
		in:      make(chan Message, 16),
		exitCh:  make(chan Exit, 1),
		sigs:    make(chan syscall.Signal, 16),
	}
	i := len(l.procs)
	l.procs = append(l.procs, p)
	go p.pump()
	go l.behave(i, p)
	return p, nil
}

// started returns the processes started so far.
func (l *fakeLauncher) started() []*fakeProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*fakeProc(nil), l.procs...)
}

// fakeProc is a scripted child.
type fakeProc struct {
	pid     int
	started time.Time
	notify  chan Message
	done    chan struct{}
	in      chan Message
	exitCh  chan Exit
	sigs    chan syscall.Signal // signals the supervisor sent, for the script

	mu       sync.Mutex
	exit     Exit
	ended    time.Time
	received []syscall.Signal
	killedAt time.Time
}

// pump forwards the script's messages and, on exit, the rest of them, then
// closes Notify and Done in that order, as the Process contract says.
func (p *fakeProc) pump() {
	for {
		select {
		case m := <-p.in:
			p.notify <- m
		case e := <-p.exitCh:
			for {
				select {
				case m := <-p.in:
					p.notify <- m
					continue
				default:
				}
				break
			}
			close(p.notify)
			p.mu.Lock()
			p.exit, p.ended = e, time.Now()
			p.mu.Unlock()
			close(p.done)
			return
		}
	}
}

func (p *fakeProc) send(m Message) {
	select {
	case p.in <- m:
	case <-p.done:
	}
}

func (p *fakeProc) ready()            { p.send(Message{Kind: MessageReady}) }
func (p *fakeProc) heartbeat()        { p.send(Message{Kind: MessageHeartbeat}) }
func (p *fakeProc) reason(r string)   { p.send(Message{Kind: MessageReason, Text: r}) }
func (p *fakeProc) exitCode(code int) { p.end(Exit{Code: code}) }

func (p *fakeProc) end(e Exit) {
	select {
	case p.exitCh <- e:
	default:
	}
}

// sleep waits d, or less if the process ends; it reports whether it is
// still running.
func (p *fakeProc) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// serve behaves like a healthy master until it ends: a heartbeat every
// second, SIGTERM exits 0, SIGHUP is only recorded.
func (p *fakeProc) serve() {
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	for {
		select {
		case <-beat.C:
			p.heartbeat()
		case sig := <-p.sigs:
			if sig == syscall.SIGTERM {
				p.exitCode(0)
			}
		case <-p.done:
			return
		}
	}
}

// hang ignores every signal until killed.
func (p *fakeProc) hang() { <-p.done }

func (p *fakeProc) Pid() int               { return p.pid }
func (p *fakeProc) Notify() <-chan Message { return p.notify }
func (p *fakeProc) Done() <-chan struct{}  { return p.done }
func (p *fakeProc) Tail() []string {
	return []string{"line from " + time.Now().UTC().Format(time.TimeOnly)}
}

func (p *fakeProc) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.received = append(p.received, sig)
	p.mu.Unlock()
	select {
	case p.sigs <- sig:
	default:
	}
	return nil
}

func (p *fakeProc) Kill() error {
	p.mu.Lock()
	if p.killedAt.IsZero() {
		p.killedAt = time.Now()
	}
	p.mu.Unlock()
	p.end(Exit{Code: -1, Signal: syscall.SIGKILL})
	return nil
}

func (p *fakeProc) signals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.received...)
}

func (p *fakeProc) killTime() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killedAt
}

func (p *fakeProc) endTime() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}
