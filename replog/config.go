package replog

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog/paxos"
)

// Defaults for the zero values of [Config].
const (
	DefaultTickInterval   = 10 * time.Millisecond
	DefaultHeartbeatTicks = 10  // 100 ms
	DefaultLeaseTicks     = 100 // 1 s
	DefaultInboxSize      = 4096
	DefaultInboxBytes     = 64 << 20
	DefaultReconcileTicks = 10
	DefaultMaxReadBytes   = 4 << 20
)

// Config configures a [Node]. Tests build it as a struct literal; the
// appliance converts the HCL configuration into it.
type Config struct {
	// Logger receives the node's logs; the node names its sublogger
	// ("replog"). Nil discards them.
	Logger hclog.Logger

	// Addr is this replica's advertised peer address (host:port).
	// Required.
	Addr string
	// Masters are the peer addresses of every master, this one included:
	// the whitelist. While coordinating, the node reconciles the log's
	// membership with it (see [Node]). Required.
	Masters []string
	// Quorum is the configured --quorum. Required.
	Quorum int
	// AutoInitialize lets a new log initialise itself when every master is
	// EMPTY.
	AutoInitialize bool

	// TickInterval is one unit of the core's logical time (default
	// [DefaultTickInterval]).
	TickInterval time.Duration
	// HeartbeatTicks, LeaseTicks and RetryTicks are the core's periods in
	// ticks (defaults [DefaultHeartbeatTicks], [DefaultLeaseTicks], and
	// 2*HeartbeatTicks).
	HeartbeatTicks int
	LeaseTicks     int
	RetryTicks     int
	// ClockDrift is subtracted from the coordinator's lease before it is
	// reported (Status.LeaseRemaining): the bound on how much faster this
	// node's clock may run than the others' over one lease (default a tenth
	// of the lease).
	ClockDrift time.Duration
	// Window bounds positions written but not yet learned; MaxBatchBytes the
	// bytes of entries in one message (core defaults when zero).
	Window        int
	MaxBatchBytes int

	// InboxSize bounds incoming messages waiting for the driver (default
	// [DefaultInboxSize]), InboxBytes the entry bytes they carry (default
	// [DefaultInboxBytes]); past either, Step drops and counts.
	InboxSize  int
	InboxBytes int
	// ReconcileTicks is how often a coordinator compares the membership
	// with Masters (default [DefaultReconcileTicks]).
	ReconcileTicks int
	// Applied is the first position the application has not consumed yet;
	// learned positions below it are not published again after a restart.
	Applied paxos.Position
	// Rand draws retry jitter and new IDs' fallbacks; nil seeds one from the
	// clock.
	Rand *rand.Rand
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("replog: addr is required"))
	}
	if len(c.Masters) == 0 {
		errs = append(errs, errors.New("replog: masters is required"))
	} else if c.Addr != "" && !slices.Contains(c.Masters, c.Addr) {
		errs = append(errs, fmt.Errorf("replog: addr %s is not in masters %v", c.Addr, c.Masters))
	}
	if c.Quorum < 1 {
		errs = append(errs, fmt.Errorf("replog: quorum %d must be at least 1", c.Quorum))
	} else if len(c.Masters) > 2*c.Quorum-1 {
		errs = append(errs, fmt.Errorf("replog: %d masters exceed 2*quorum-1 = %d", len(c.Masters), 2*c.Quorum-1))
	} else if len(c.Masters) > 0 && len(c.Masters) < c.Quorum {
		errs = append(errs, fmt.Errorf("replog: %d masters are fewer than the quorum %d", len(c.Masters), c.Quorum))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"heartbeat_ticks", c.HeartbeatTicks}, {"lease_ticks", c.LeaseTicks}, {"retry_ticks", c.RetryTicks},
		{"window", c.Window}, {"max_batch_bytes", c.MaxBatchBytes}, {"inbox_size", c.InboxSize}, {"inbox_bytes", c.InboxBytes}, {"reconcile_ticks", c.ReconcileTicks}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("replog: %s is negative: %d", f.name, f.v))
		}
	}
	if c.TickInterval < 0 || c.ClockDrift < 0 {
		errs = append(errs, errors.New("replog: tick_interval and clock_drift must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.LeaseTicks == 0 {
		c.LeaseTicks = max(DefaultLeaseTicks, 2*c.HeartbeatTicks)
	}
	if c.RetryTicks == 0 {
		c.RetryTicks = 2 * c.HeartbeatTicks
	}
	if c.ClockDrift == 0 {
		c.ClockDrift = time.Duration(c.LeaseTicks) * c.TickInterval / 10
	}
	if c.InboxSize == 0 {
		c.InboxSize = DefaultInboxSize
	}
	if c.InboxBytes == 0 {
		c.InboxBytes = DefaultInboxBytes
	}
	if c.ReconcileTicks == 0 {
		c.ReconcileTicks = DefaultReconcileTicks
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	return c
}
