package paxos

import (
	"errors"
	"fmt"
	"math/rand"
)

// Config configures a Core. The zero value of an optional field picks the
// default noted next to it.
type Config struct {
	// Replica is this replica's ID. The driver takes it from storage, or
	// draws a new one for an empty store. Required.
	Replica ReplicaID
	// Addr is this replica's advertised peer address. It is informational: it
	// is written into the membership at initialisation and sent with recover
	// requests so a coordinator can add the replica.
	Addr string
	// Cluster is the ClusterID written into position 0 if this replica
	// becomes the first coordinator of a new log. The driver passes a random
	// non-zero value; it is ignored once the log is initialised. Zero falls
	// back to a value derived from Replica (itself random).
	Cluster ClusterID
	// Quorum is the configured --quorum. A quorum is a majority of the voters
	// in force, and at least min(Quorum, voters); at most 2*Quorum-1 voters
	// are ever admitted. Required.
	Quorum int
	// AutoInitialize enables two-phase auto-initialisation when every
	// expected replica is EMPTY.
	AutoInitialize bool
	// Expected is the number of replicas expected at initialisation
	// (len(masters)); 0 means 2*Quorum-1.
	Expected int
	// Rand draws retry jitter. Nil means no jitter (every retry after exactly
	// RetryTicks).
	Rand *rand.Rand
	// HeartbeatTicks is the coordinator's heartbeat period. Default 1.
	HeartbeatTicks int
	// LeaseTicks is the lease: a replica that heard from a live coordinator
	// within LeaseTicks refuses implicit promises to any other proposer, and
	// the coordinator's lease lasts LeaseTicks from the send tick of the
	// newest heartbeat or write a quorum acknowledged. Default
	// 10*HeartbeatTicks.
	LeaseTicks int
	// StartWithLease makes a VOTING replica promise no one for LeaseTicks
	// after New, its own campaigns included. A replica that restarts cannot
	// know whether it renewed a coordinator's lease just before it stopped,
	// so it behaves as if it had. Drivers set it; false (the default) lets a
	// new Core promise at once, as the rule tests and scripts assume.
	StartWithLease bool
	// RetryTicks is the base back-off of retried rounds (campaign, fill,
	// recover, catch-up) and of write retransmission; jitter is drawn in
	// [RetryTicks, 2*RetryTicks). Default 2*HeartbeatTicks.
	RetryTicks int
	// Window is the number of positions written but not yet learned, at
	// most. Default 512: with 256 concurrent appenders a window of 128 kept
	// half of them waiting for the next round trip (regent log bench
	// -writers 256: 10–35 % more appends/s and a lower p99 with 512, in
	// back-to-back runs; docs/performance.md).
	Window int
	// MaxBatchBytes bounds the bytes of entries in one write, learned or
	// catch-up message (at least one entry is always sent). Default 1 MiB.
	MaxBatchBytes int
	// Applied is the first position the application has not yet consumed:
	// learned positions below it are not delivered again in Ready.Learned
	// after a restart. 0 delivers every learned position from Begin.
	Applied Position

	// noPreVote makes Campaign start the implicit promise round at once,
	// as before the pre-vote existed. Tests set it to show what the
	// pre-vote prevents; nothing else can.
	noPreVote bool
}

// withDefaults returns cfg with defaults filled in.
func (cfg Config) withDefaults() Config {
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.LeaseTicks <= 0 {
		cfg.LeaseTicks = 10 * cfg.HeartbeatTicks
	}
	if cfg.RetryTicks <= 0 {
		cfg.RetryTicks = 2 * cfg.HeartbeatTicks
	}
	if cfg.Window <= 0 {
		cfg.Window = 512
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 1 << 20
	}
	if cfg.Expected <= 0 {
		cfg.Expected = 2*cfg.Quorum - 1
	}
	if cfg.Cluster == 0 {
		cfg.Cluster = ClusterID(uint64(cfg.Replica)*0x9e3779b97f4a7c15 | 1)
	}
	return cfg
}

// Validate reports every problem with cfg.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Replica == 0 {
		errs = append(errs, errors.New("replica id must be non-zero"))
	}
	if cfg.Quorum < 1 {
		errs = append(errs, fmt.Errorf("quorum %d must be at least 1", cfg.Quorum))
	}
	if cfg.Expected > 0 && cfg.Quorum >= 1 && cfg.Expected > 2*cfg.Quorum-1 {
		errs = append(errs, fmt.Errorf("expected replicas %d exceed 2*quorum-1 = %d", cfg.Expected, 2*cfg.Quorum-1))
	}
	if cfg.Expected > 0 && cfg.Expected < cfg.Quorum {
		errs = append(errs, fmt.Errorf("expected replicas %d below quorum %d", cfg.Expected, cfg.Quorum))
	}
	if cfg.HeartbeatTicks > 0 && cfg.LeaseTicks > 0 && cfg.LeaseTicks <= cfg.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("lease %d ticks must exceed the heartbeat period %d", cfg.LeaseTicks, cfg.HeartbeatTicks))
	}
	return errors.Join(errs...)
}
