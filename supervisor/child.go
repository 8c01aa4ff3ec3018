package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The environment variables through which the supervisor hands the child its
// end of the private channel.
const (
	// EnvLifelineFD names the fd of the lifeline's read end. The child
	// exits when a read returns EOF: the supervisor is gone.
	EnvLifelineFD = "REGENT_LIFELINE_FD"
	// EnvNotifyFD names the fd of the notify pipe's write end.
	EnvNotifyFD = "REGENT_NOTIFY_FD"
	// EnvHeartbeatUSec is how often, in microseconds, the supervisor wants
	// a heartbeat.
	EnvHeartbeatUSec = "REGENT_HEARTBEAT_USEC"
)

// notifyWriteTimeout bounds one write to the notify pipe, so a stuck
// supervisor never stalls the child's main loop.
const notifyWriteTimeout = time.Second

// Child is the child's side of the channel to its supervisor: it watches the
// lifeline and sends readiness, heartbeats, status and the exit reason.
//
// Without a supervisor (no REGENT_* variables) a Child started by systemd
// with Type=notify talks to systemd directly (NOTIFY_SOCKET), so
// `regent master` also works as a unit of its own; otherwise its methods do
// nothing. The methods are safe for concurrent use.
type Child struct {
	notify    *os.File // supervisor's notify pipe, or nil
	socket    string   // systemd's NOTIFY_SOCKET when not supervised
	interval  time.Duration
	lifeline  *os.File
	lost      chan struct{}
	watchDone chan struct{}

	mu     sync.Mutex
	closed bool
}

// ChildFromEnv returns the child's side of the channel described by the
// process environment. When the lifeline is set it starts one goroutine that
// watches it; on EOF (the supervisor is gone) it closes [Child.Lost] and
// calls onLost, if non-nil, once. The master passes a function that stops it
// at once; on Linux a parent-death SIGKILL backs this up. The goroutine ends
// on [Child.Close].
func ChildFromEnv(onLost func()) (*Child, error) {
	c := &Child{lost: make(chan struct{}), watchDone: make(chan struct{})}
	lifeline, err := fdFromEnv(EnvLifelineFD, "regent-lifeline")
	if err != nil {
		return nil, err
	}
	c.notify, err = fdFromEnv(EnvNotifyFD, "regent-notify")
	if err != nil {
		if lifeline != nil {
			lifeline.Close()
		}
		return nil, err
	}
	if us, err := strconv.ParseInt(os.Getenv(EnvHeartbeatUSec), 10, 64); err == nil && us > 0 {
		c.interval = time.Duration(us) * time.Microsecond
	}
	if c.notify == nil && lifeline == nil {
		sd, _ := parseSystemdEnv(os.Environ(), os.Getpid())
		c.socket = sd.socket
		c.interval = sd.watchdog / 2
	}
	if lifeline == nil {
		close(c.watchDone)
		return c, nil
	}
	c.lifeline = lifeline
	go c.watch(onLost)
	return c, nil
}

// fdFromEnv opens the inherited fd named by the variable key, marking it
// close-on-exec and non-blocking (so deadlines and Close work). It returns
// nil if key is unset.
func fdFromEnv(key, name string) (*os.File, error) {
	v := os.Getenv(key)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("child channel: %s=%q: not an inherited fd", key, v)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("child channel: %s=%d: %w", key, fd, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func (c *Child) watch(onLost func()) {
	defer close(c.watchDone)
	var buf [64]byte
	for {
		_, err := c.lifeline.Read(buf[:])
		if err == nil {
			continue // the supervisor never writes; ignore anything
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed || !errors.Is(err, io.EOF) {
			return
		}
		close(c.lost)
		if onLost != nil {
			onLost()
		}
		return
	}
}

// Supervised reports whether a supervisor started this process.
func (c *Child) Supervised() bool { return c.lifeline != nil || c.notify != nil }

// Lost is closed when the lifeline reports that the supervisor is gone.
func (c *Child) Lost() <-chan struct{} { return c.lost }

// HeartbeatInterval is how often the child should call [Child.Heartbeat];
// zero means no heartbeat is expected.
func (c *Child) HeartbeatInterval() time.Duration { return c.interval }

// Ready tells the supervisor (or systemd) that the child is ready to serve.
func (c *Child) Ready() error { return c.send(Message{Kind: MessageReady}) }

// Heartbeat tells the supervisor (or systemd's watchdog) that the child's
// main loop is alive. Call it from the loop whose liveness it proves, every
// [Child.HeartbeatInterval].
func (c *Child) Heartbeat() error {
	if c.notify == nil && c.interval == 0 {
		return nil
	}
	return c.send(Message{Kind: MessageHeartbeat})
}

// Status sends a free-form status line.
func (c *Child) Status(text string) error {
	return c.send(Message{Kind: MessageStatus, Text: text})
}

// Reason sends the one-line reason the child is about to exit, e.g.
// "lost leadership"; the supervisor reports it in its status, hooks and
// STATUS=. Call it once, just before exiting.
func (c *Child) Reason(text string) error {
	if c.notify == nil {
		return c.send(Message{Kind: MessageStatus, Text: "exiting: " + text})
	}
	return c.send(Message{Kind: MessageReason, Text: text})
}

func (c *Child) send(m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("notify %s: child channel closed", m.Kind)
	}
	if c.notify == nil {
		return sdNotify(c.socket, m.format())
	}
	if err := c.notify.SetWriteDeadline(time.Now().Add(notifyWriteTimeout)); err != nil {
		return fmt.Errorf("notify %s: %w", m.Kind, err)
	}
	if _, err := io.WriteString(c.notify, m.format()); err != nil {
		return fmt.Errorf("notify %s: %w", m.Kind, err)
	}
	return nil
}

// Close stops watching the lifeline and closes both fds. Idempotent.
func (c *Child) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var errs []error
	if c.notify != nil {
		errs = append(errs, c.notify.Close())
	}
	if c.lifeline != nil {
		errs = append(errs, c.lifeline.Close())
	}
	c.mu.Unlock()
	<-c.watchDone
	return errors.Join(errs...)
}
