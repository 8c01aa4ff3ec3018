package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// drainGrace is how long a reaped child's pipes may stay open (held by a
// process the child left behind) before the supervisor stops reading them.
const drainGrace = time.Second

// ExecLauncher starts the child as a real process: in its own process group,
// with the lifeline's read end as fd 3 and the notify pipe's write end as
// fd 4 (named by [EnvLifelineFD] and [EnvNotifyFD]), stdin on /dev/null and
// stdout and stderr relayed into Logger. On Linux the child also gets
// SIGKILL as its parent-death signal.
type ExecLauncher struct {
	// Path is the executable.
	Path string
	// Args are the arguments after argv[0].
	Args []string
	// Env is the child's environment (without the REGENT_*_FD variables,
	// which the launcher adds).
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// HeartbeatInterval is passed as [EnvHeartbeatUSec]; zero omits it.
	HeartbeatInterval time.Duration
	// Logger receives the child's output; nil discards it.
	Logger hclog.Logger
}

// Start implements [Launcher]. The child is started from a goroutine locked
// to its OS thread until the child is reaped, because Linux sends the
// parent-death signal when the thread that forked the child exits, not the
// process (golang/go#27505).
func (l *ExecLauncher) Start(ctx context.Context) (Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", l.Path, err)
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	lifeR, lifeW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: lifeline: %w", l.Path, err)
	}
	notR, notW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: notify pipe: %w", l.Path, err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: output pipe: %w", l.Path, err)
	}

	cmd := exec.Command(l.Path, l.Args...)
	cmd.Dir = l.Dir
	cmd.Env = append(append([]string(nil), l.Env...),
		EnvLifelineFD+"=3", EnvNotifyFD+"=4")
	if l.HeartbeatInterval > 0 {
		cmd.Env = append(cmd.Env, EnvHeartbeatUSec+"="+strconv.FormatInt(l.HeartbeatInterval.Microseconds(), 10))
	}
	cmd.ExtraFiles = []*os.File{lifeR, notW}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.SysProcAttr = sysProcAttr()

	log := l.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	p := &execProcess{
		cmd:    cmd,
		notify: make(chan Message),
		done:   make(chan struct{}),
		waited: make(chan struct{}),
		tail:   newRing(TailLines),
	}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, after the
		// child has been reaped.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		p.reaped(err)
	}()
	if err := <-started; err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: %w", l.Path, err)
	}
	// The child holds its ends now; ours must go so EOF means the child
	// (and anything it forked) is gone.
	lifeR.Close()
	notW.Close()
	outW.Close()
	p.lifeline = lifeW
	p.pid = cmd.Process.Pid

	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		newRelay(log, p.tail).run(outR)
	}()
	go func() {
		defer readers.Done()
		defer close(p.notify)
		sc := bufio.NewScanner(notR)
		sc.Buffer(make([]byte, 4096), maxLineBytes)
		for sc.Scan() {
			if m, ok := parseMessage(sc.Text()); ok {
				p.notify <- m
			}
		}
	}()
	go func() {
		<-p.waited
		drained := make(chan struct{})
		go func() {
			readers.Wait()
			close(drained)
		}()
		t := time.NewTimer(drainGrace)
		select {
		case <-drained:
			t.Stop()
		case <-t.C:
			// Something the child left behind holds the pipes: stop
			// reading; Close unblocks the readers.
			outR.Close()
			notR.Close()
			<-drained
		}
		outR.Close()
		notR.Close()
		p.lifeline.Close()
		close(p.done)
	}()
	return p, nil
}

// execProcess is a child started by [ExecLauncher].
type execProcess struct {
	cmd      *exec.Cmd
	pid      int
	lifeline *os.File
	notify   chan Message
	done     chan struct{}
	tail     *ring

	waited chan struct{} // closed once the child is reaped

	mu     sync.Mutex
	isReap bool
	exit   Exit
}

// reaped records the child's end. A non-nil err from Wait with a
// ProcessState is just the non-zero exit, which exitOf reads.
func (p *execProcess) reaped(error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isReap = true
	p.exit = exitOf(p.cmd.ProcessState)
	close(p.waited)
}

func exitOf(ps *os.ProcessState) Exit {
	if ps == nil {
		return Exit{Code: -1, StartFailed: true}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Code: -1, Signal: ws.Signal()}
	}
	return Exit{Code: ps.ExitCode()}
}

func (p *execProcess) Pid() int               { return p.pid }
func (p *execProcess) Notify() <-chan Message { return p.notify }
func (p *execProcess) Done() <-chan struct{}  { return p.done }
func (p *execProcess) Tail() []string         { return p.tail.snapshot() }

func (p *execProcess) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *execProcess) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isReap {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s pid %d: %w", signalName(sig), p.pid, err)
	}
	return nil
}

func (p *execProcess) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isReap {
		return nil
	}
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", p.pid, err)
	}
	return nil
}
