package paxos

import "errors"

// Errors the core returns for conditions the driver branches on. Storage
// errors are returned wrapped and are fatal.
var (
	// ErrNotCoordinator is returned by Propose and ChangeMembership when this
	// replica is not an elected coordinator (it may be campaigning, filling or
	// a follower).
	ErrNotCoordinator = errors.New("paxos: not the coordinator")
	// ErrAlreadyCoordinator is returned by Campaign while a campaign is running
	// or this replica is the coordinator.
	ErrAlreadyCoordinator = errors.New("paxos: already campaigning or coordinating")
	// ErrWindowFull is returned by Propose when the entries would not fit in
	// the window of positions written but not yet learned, or while a
	// membership change is being written (no position above an unlearned
	// EntryConfig is ever written). Retry after the next Ready.
	ErrWindowFull = errors.New("paxos: write window full")
	// ErrChangeInProgress is returned by ChangeMembership while a previous
	// change is not yet learned.
	ErrChangeInProgress = errors.New("paxos: membership change in progress")
	// ErrNotVoting is returned by Campaign when the local replica is not
	// VOTING or not a voter of the membership.
	ErrNotVoting = errors.New("paxos: replica is not a voter")
	// ErrLeaseHeld is returned by Campaign while the local replica knows of a
	// live lease held by another coordinator.
	ErrLeaseHeld = errors.New("paxos: another coordinator holds the lease")
	// ErrInvalidChange is returned by ChangeMembership for a change that does
	// not apply to the current membership (unknown or duplicate replica,
	// removing the coordinator itself, an empty voter set).
	ErrInvalidChange = errors.New("paxos: invalid membership change")
	// ErrNotCaughtUp is returned by ChangeMembership for Promote when the
	// replica has not reported VOTING with its learned position within the
	// window of the coordinator's.
	ErrNotCaughtUp = errors.New("paxos: replica has not caught up")
	// ErrTooManyVoters is returned by ChangeMembership when a promotion would
	// admit more than 2*Quorum-1 voters.
	ErrTooManyVoters = errors.New("paxos: too many voters for the quorum")
	// ErrInvalidEntry is returned by Propose for an entry the application may
	// not write (an EntryConfig, an EntryTruncate above its own position).
	ErrInvalidEntry = errors.New("paxos: invalid entry")
)
