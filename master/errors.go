package master

import (
	"errors"
	"fmt"
)

// Errors a [Log] returns that the master branches on. The appliance's adapter
// maps the log implementation's errors onto these (wrapping is fine: the
// master uses errors.Is).
var (
	// ErrLostLeadership means another replica became the log's coordinator:
	// this node's Append, AppendSnapshot or Truncate will never succeed.
	ErrLostLeadership = errors.New("master: lost leadership of the log")
	// ErrNotLeader means the node is not the log's coordinator.
	ErrNotLeader = errors.New("master: not the log coordinator")
	// ErrNotElected means an election round did not make this node the
	// coordinator (a live lease elsewhere, a higher proposal, no quorum). It
	// is retried after jitter.
	ErrNotElected = errors.New("master: not elected")
	// ErrClosed means the log was closed.
	ErrClosed = errors.New("master: log closed")
	// ErrCorrupt marks storage corruption or incompatible data: permanent.
	ErrCorrupt = errors.New("master: corrupt or incompatible data")
)

// Conditions that end [Master.Run]; an [*ExitError] wraps one of them.
var (
	// ErrLeaseExpired means the leading master could not renew its lease
	// with a quorum in time.
	ErrLeaseExpired = errors.New("master: leader lease expired")
	// ErrStoreTimeout means a registry store did not complete within
	// registry_store_timeout.
	ErrStoreTimeout = errors.New("master: registry store timed out")
	// ErrFetchTimeout means registry recovery did not complete within
	// registry_fetch_timeout.
	ErrFetchTimeout = errors.New("master: registry fetch timed out")
	// ErrIdentity means the registry belongs to another cluster or needs
	// capabilities this master lacks.
	ErrIdentity = errors.New("master: identity mismatch")
	// ErrRegistrarAborted is returned for operations submitted after a
	// failed store: the registrar refuses further work and the master exits.
	ErrRegistrarAborted = errors.New("master: registrar aborted")
)

// Exit codes carried by [ExitError].
const (
	// ExitTransient asks the supervisor to restart the master with backoff.
	ExitTransient = 1
	// ExitConfig (EX_CONFIG) asks the supervisor not to restart: bad config,
	// identity or cluster mismatch, corrupt or incompatible data.
	ExitConfig = 78
)

// ExitError is why [Master.Run] ended on its own. Code is the process exit
// code the appliance should use; Reason is the one line the master's exit
// logs and the supervisor reports (modelled on the Mesos master's fatal
// messages); Err is the cause, usually wrapping one of the package's
// sentinel errors.
type ExitError struct {
	Code   int
	Reason string
	Err    error
}

// Error returns the reason and the cause.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Err }

// Reasons, after the Mesos master's messages (reference: mesos.md c.4).
const (
	reasonLostLeadership = "Conceded leadership to another master... committing suicide!"
	reasonLeaseExpired   = "Leading master cut off from the quorum: lease expired... committing suicide!"
	reasonStoreFailed    = "Registrar aborted: failed to update the registry"
	reasonRecoveryFailed = "Recovery failed: failed to recover registrar"
	reasonLogFailed      = "Failed to read the replicated log"
	reasonCorrupt        = "Failed to recover the log: corrupt or incompatible data"
	reasonContend        = "Failed to contend for leadership"
	reasonIdentity       = "Registry identity mismatch"
	reasonClosed         = "Replicated log closed"
)

// exitFor classifies err into an *ExitError; reason prefixes the message
// unless the error kind has its own.
func exitFor(reason string, err error) *ExitError {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee
	}
	switch {
	case errors.Is(err, ErrCorrupt):
		return &ExitError{Code: ExitConfig, Reason: reasonCorrupt, Err: err}
	case errors.Is(err, ErrIdentity):
		return &ExitError{Code: ExitConfig, Reason: reasonIdentity, Err: err}
	case errors.Is(err, ErrLostLeadership), errors.Is(err, ErrNotLeader):
		return &ExitError{Code: ExitTransient, Reason: reasonLostLeadership, Err: err}
	case errors.Is(err, ErrLeaseExpired):
		return &ExitError{Code: ExitTransient, Reason: reasonLeaseExpired, Err: err}
	case errors.Is(err, ErrClosed):
		return &ExitError{Code: ExitTransient, Reason: reasonClosed, Err: err}
	}
	return &ExitError{Code: ExitTransient, Reason: reason, Err: err}
}
