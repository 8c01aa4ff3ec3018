package supervisor

import (
	"context"
	"fmt"
	"strings"
	"syscall"
)

// Launcher starts the child. The real one ([ExecLauncher]) re-executes a
// binary; tests use a fake that scripts the child's behaviour.
type Launcher interface {
	// Start starts one child and returns at once. It must not be called
	// again before the previous Process is Done. ctx bounds only the start
	// itself, not the child's life.
	Start(ctx context.Context) (Process, error)
}

// Process is one running child, as the supervision loop sees it.
//
// Notify delivers the child's messages in order and is closed before Done
// is; every message the child sent before it exited is delivered before
// Notify closes. The channel is unbuffered, so a message is handled by the
// time the loop can observe Done.
type Process interface {
	// Pid returns the child's process ID (also its process group ID).
	Pid() int
	// Notify returns the channel of the child's messages.
	Notify() <-chan Message
	// Signal sends sig to the child process. It does nothing once the
	// child has been reaped.
	Signal(sig syscall.Signal) error
	// Kill sends SIGKILL to the child's whole process group. It does
	// nothing once the child has been reaped.
	Kill() error
	// Done is closed once the child has been reaped and its output and
	// notify pipes are drained.
	Done() <-chan struct{}
	// Exit returns how the child ended; valid once Done is closed.
	Exit() Exit
	// Tail returns the child's last output lines, oldest first; the caller
	// owns the slice. Complete once Done is closed.
	Tail() []string
}

// Exit is how a child ended.
type Exit struct {
	// Code is the exit code, or -1 if the child was killed by a signal or
	// never started.
	Code int
	// Signal is the signal that killed the child, or 0.
	Signal syscall.Signal
	// StartFailed reports that the child could not be started at all.
	StartFailed bool
}

// String describes e for logs and STATUS=.
func (e Exit) String() string {
	switch {
	case e.StartFailed:
		return "start failed"
	case e.Signal != 0:
		return fmt.Sprintf("killed by %s", signalName(e.Signal))
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// MessageKind is the kind of a message from the child.
type MessageKind int

const (
	// MessageReady says the child is ready to serve.
	MessageReady MessageKind = iota + 1
	// MessageHeartbeat says the child's main loop is alive.
	MessageHeartbeat
	// MessageReason carries the one-line reason the child is about to exit.
	MessageReason
	// MessageStatus carries a free-form status line for STATUS=.
	MessageStatus
)

// String returns the wire key of the kind.
func (k MessageKind) String() string {
	switch k {
	case MessageReady:
		return "READY"
	case MessageHeartbeat:
		return "WATCHDOG"
	case MessageReason:
		return "REASON"
	case MessageStatus:
		return "STATUS"
	}
	return fmt.Sprintf("MessageKind(%d)", int(k))
}

// Message is one message from the child over the notify pipe. On the wire
// it is one line in sd_notify style: READY=1, WATCHDOG=1, REASON=<text>,
// STATUS=<text>.
type Message struct {
	// Kind says what the message is.
	Kind MessageKind
	// Text is the reason or status line; empty for READY and WATCHDOG.
	Text string
}

// parseMessage parses one line of the notify pipe; ok is false for lines
// it does not know, which are ignored so either side can grow.
func parseMessage(line string) (m Message, ok bool) {
	key, val, found := strings.Cut(line, "=")
	if !found {
		return Message{}, false
	}
	switch key {
	case "READY":
		return Message{Kind: MessageReady}, val == "1"
	case "WATCHDOG":
		return Message{Kind: MessageHeartbeat}, val == "1"
	case "REASON":
		return Message{Kind: MessageReason, Text: val}, true
	case "STATUS":
		return Message{Kind: MessageStatus, Text: val}, true
	}
	return Message{}, false
}

// format returns m as one wire line, newline included. Newlines inside Text
// become spaces so a message is always one line.
func (m Message) format() string {
	switch m.Kind {
	case MessageReady, MessageHeartbeat:
		return m.Kind.String() + "=1\n"
	}
	return m.Kind.String() + "=" + strings.ReplaceAll(m.Text, "\n", " ") + "\n"
}

// signalName returns the conventional name of sig, e.g. SIGKILL.
func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "SIGABRT",
	syscall.SIGBUS:  "SIGBUS",
	syscall.SIGFPE:  "SIGFPE",
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGILL:  "SIGILL",
	syscall.SIGINT:  "SIGINT",
	syscall.SIGKILL: "SIGKILL",
	syscall.SIGPIPE: "SIGPIPE",
	syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGSEGV: "SIGSEGV",
	syscall.SIGTERM: "SIGTERM",
	syscall.SIGTRAP: "SIGTRAP",
	syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2",
}
