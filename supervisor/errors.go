package supervisor

import "errors"

// The exit-code contract between master, supervisor and systemd
// (design.md §2). The appliance maps errors to these with [ExitCode].
const (
	// ExitOK means stopped on request: the supervisor stops too and the
	// unit stays stopped.
	ExitOK = 0
	// ExitConfig (EX_CONFIG) means a permanent failure: bad configuration,
	// identity or cluster mismatch, corrupt or incompatible data. The
	// supervisor does not restart the child and exits with it; the unit has
	// RestartPreventExitStatus=78.
	ExitConfig = 78
	// ExitGaveUp is the supervisor's own exit code once the restart budget
	// is spent; systemd's Restart=on-failure takes over. Any other child
	// exit code, or death by a signal, is transient and restarted.
	ExitGaveUp = 1
)

var (
	// ErrFatal is returned by [Supervisor.Run] when the child exited with
	// [ExitConfig].
	ErrFatal = errors.New("supervisor: child failed permanently")
	// ErrGaveUp is returned by [Supervisor.Run] when the restart budget is
	// spent.
	ErrGaveUp = errors.New("supervisor: restart budget spent")
)

// ExitCode maps the error [Supervisor.Run] returned to the supervisor's exit
// code: nil is [ExitOK], [ErrFatal] is [ExitConfig], anything else is
// [ExitGaveUp].
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrFatal):
		return ExitConfig
	}
	return ExitGaveUp
}
