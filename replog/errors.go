package replog

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with [errors.Is]; every error a
// [Node] or a [Storage] returns wraps at most one of them.
var (
	// ErrClosed is returned by every method of a closed [Node] or [Storage].
	ErrClosed = errors.New("replog: closed")

	// ErrCorrupt marks stored or received data that cannot be decoded, a
	// checksum mismatch, or a store in a format this binary does not know.
	// It is permanent: the process must not restart into the same data
	// (exit code 78), and no store ever resets itself silently.
	ErrCorrupt = errors.New("replog: corrupt data")

	// ErrLostLeadership is returned to writers when this node was the
	// coordinator and another coordinator took over (or the lease could not
	// be renewed) before their entries were learned. Whether such an entry
	// is eventually learned is unknown to the caller.
	ErrLostLeadership = errors.New("replog: lost leadership")

	// ErrNotLeader is returned to writers when this node is not the
	// coordinator; nothing was proposed.
	ErrNotLeader = errors.New("replog: not the leader")
)

// InUseError reports that another process (another regent master) holds the
// lock of a store directory. It is returned by stores' Open functions.
type InUseError struct {
	Dir string // the store directory
	Err error  // the underlying lock error, if any
}

// Error implements error.
func (e *InUseError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("another regent master is using %s", e.Dir)
	}
	return fmt.Sprintf("another regent master is using %s: %v", e.Dir, e.Err)
}

// Unwrap returns the underlying lock error.
func (e *InUseError) Unwrap() error { return e.Err }
