package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// State is the supervisor's state, after supervisord's.
type State int

const (
	// StateStarting means a child was started and has not reported readiness.
	StateStarting State = iota + 1
	// StateRunning means the child is ready.
	StateRunning
	// StateBackoff means the child exited and will be restarted after a delay.
	StateBackoff
	// StateStopping means the child is being stopped (stop or reload restart).
	StateStopping
	// StateStopped means the child stopped (on request, or it exited 0); the
	// supervisor exits 0.
	StateStopped
	// StateFatal means the child failed permanently (exit 78); the supervisor
	// exits 78.
	StateFatal
	// StateGaveUp means the restart budget is spent; the supervisor exits
	// non-zero and systemd takes over.
	StateGaveUp
)

var stateNames = [...]string{
	StateStarting: "starting",
	StateRunning:  "running",
	StateBackoff:  "backoff",
	StateStopping: "stopping",
	StateStopped:  "stopped",
	StateFatal:    "fatal",
	StateGaveUp:   "gave_up",
}

// String returns the state's name.
func (s State) String() string {
	if s >= StateStarting && s <= StateGaveUp {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText encodes s as its name.
func (s State) MarshalText() ([]byte, error) {
	if s < StateStarting || s > StateGaveUp {
		return nil, fmt.Errorf("marshal state: invalid state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	for st := StateStarting; st <= StateGaveUp; st++ {
		if stateNames[st] == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unmarshal state: unknown state %q", b)
}

// Status is the supervisor's view of the child, as kept in the state file and
// summarised in systemd's STATUS=.
type Status struct {
	// State is the supervisor's state.
	State State `json:"state"`
	// SupervisorPID is the supervisor's process ID.
	SupervisorPID int `json:"supervisor_pid"`
	// ChildPID is the current (or last) child's process ID.
	ChildPID int `json:"child_pid,omitempty"`
	// Restarts counts the restarts since the supervisor started.
	Restarts int `json:"restarts"`
	// StartedAt is when the current (or last) child was started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// ReadyAt is when the current child reported readiness; zero if not yet.
	ReadyAt time.Time `json:"ready_at,omitzero"`
	// LastExit describes how the last child ended ("exit code 1",
	// "killed by SIGKILL"); empty if none has.
	LastExit string `json:"last_exit,omitempty"`
	// LastExitCode is the last child's exit code, -1 if killed by a signal.
	LastExitCode int `json:"last_exit_code"`
	// LastSignal names the signal that killed the last child, if any.
	LastSignal string `json:"last_signal,omitempty"`
	// LastReason is the last child's own exit reason, or the supervisor's
	// (watchdog, ready timeout).
	LastReason string `json:"last_reason,omitempty"`
	// LastExitAt is when the last child ended.
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
	// NextStartAt is when the next child starts (backoff only).
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	// NextBackoff is the current backoff delay, as text (backoff only).
	NextBackoff string `json:"next_backoff,omitempty"`
	// ReloadError is the diagnostics of the last failed reload; cleared by
	// a successful one.
	ReloadError string `json:"reload_error,omitempty"`
	// ChildStatus is the last free-form status line the child sent.
	ChildStatus string `json:"child_status,omitempty"`
	// LastOutput is the last child's final output lines, kept when it
	// exits, for crash reports.
	LastOutput []string `json:"last_output,omitempty"`
	// UpdatedAt is when this status was written.
	UpdatedAt time.Time `json:"updated_at"`
}

// Line summarises s for systemd's STATUS=, on one line.
func (s *Status) Line() string {
	var b strings.Builder
	b.WriteString(s.State.String())
	if s.ChildPID != 0 && (s.State == StateStarting || s.State == StateRunning || s.State == StateStopping) {
		fmt.Fprintf(&b, ", pid %d", s.ChildPID)
	}
	fmt.Fprintf(&b, ", %d restarts", s.Restarts)
	if s.State == StateBackoff && s.NextBackoff != "" {
		fmt.Fprintf(&b, ", next start in %s", s.NextBackoff)
	}
	if s.LastExit != "" {
		fmt.Fprintf(&b, ", last exit: %s", s.LastExit)
		if s.LastReason != "" {
			fmt.Fprintf(&b, " (%s)", s.LastReason)
		}
	}
	if s.ReloadError != "" {
		fmt.Fprintf(&b, "; reload failed: %s", s.ReloadError)
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// WriteStatus writes s to path as JSON, mode 0600, by writing a temporary
// file in the same directory and renaming it over path, so a reader never
// sees a partial file.
func WriteStatus(path string, s *Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write status %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write status %s: %w", path, err)
	}
	return nil
}

// ReadStatus reads the status a supervisor wrote to path. It does not tell
// whether that supervisor still runs; see [Status.SupervisorPID].
func ReadStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("read status %s: %w", path, err)
	}
	return s, nil
}
