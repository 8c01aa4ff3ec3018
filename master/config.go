package master

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures one master. The zero value of every optional field
// means the default named in its comment.
type Config struct {
	// ID names this master process in MasterInfo; required. The appliance
	// draws a new one per start, as Mesos does.
	ID string
	// Cluster is the cluster's name. A registry whose leader records name
	// another cluster is refused (exit code 78).
	Cluster string
	// Hostname is the advertised hostname (MasterInfo.hostname, redirects).
	// Empty means the advertised IP.
	Hostname string
	// IP and Port are the API bind address. Port 0 picks a free port.
	IP   string
	Port int
	// AdvertiseIP and AdvertisePort are what others are told (MasterInfo,
	// /state, redirects); empty/zero mean IP and the bound port.
	AdvertiseIP   string
	AdvertisePort int
	// Listener, if set, is used instead of listening on IP:Port.
	Listener net.Listener
	// Quorum is the configured log quorum, reported in metrics and status.
	Quorum int
	// Version is the regent version reported by /version and MasterInfo.
	Version string
	// Flags is what /flags and GET_FLAGS report.
	Flags map[string]string

	// RegistryStoreTimeout bounds one registry store (default 20s).
	RegistryStoreTimeout time.Duration
	// RegistryFetchTimeout bounds registry recovery after election
	// (default 1m).
	RegistryFetchTimeout time.Duration
	// SnapshotEntries and SnapshotBytes: a snapshot is written after this
	// many entries or bytes of entries since the last one (defaults 10000
	// entries, 4 MiB). A snapshot drains the leader's pipeline (every batch
	// in flight is applied first, then the snapshot and the truncation are
	// two log writes in a row), so under load it should be rare: at 1000
	// entries it came about once a second in regent bench, and 10000 gave
	// 6-34% more writes/s with a lower p99 in three alternating runs. 4 MiB
	// of entries still bounds the log and a restarting master's replay.
	SnapshotEntries int
	SnapshotBytes   int
	// MaxBatchOps caps operations per log entry (default 128); MaxInFlight
	// caps batches being stored at once (default 8). A batch is sealed as
	// soon as a slot is free, with every operation queued by then, so
	// fewer slots mean larger entries: with 64 regent bench clients, 2, 3,
	// 4, 8 and 16 slots gave entries of 17, 13, 11, 6 and 3.4 operations
	// and the same writes/s within the noise of a shared machine (the
	// log's round, not the number of entries, bounded them).
	MaxBatchOps int
	MaxInFlight int
	// Lease is the coordinator lease the log grants, recorded in the
	// leader's MasterInfo (informational; the log enforces it).
	Lease time.Duration
	// LeaseMargin is subtracted from the remaining lease before serving a
	// leader-only read: the clock-drift allowance (default Lease/10, at
	// least 1ms).
	LeaseMargin time.Duration
	// LeaseGrace is how long a leader whose lease lapsed keeps trying to
	// renew it, while the log still makes it the coordinator, before it
	// exits (default 1s). Meanwhile it answers leader-only requests with
	// 503 and its writes still need a quorum, so waiting is safe; a lapse
	// that short is a stalled disk or process (a synced save of a few
	// hundred ms on a busy machine), not a partition, and exiting on it
	// would hand leadership over for nothing. A leader deposed meanwhile
	// exits at once.
	LeaseGrace time.Duration
	// CheckInterval is how often the master polls the log's status to
	// campaign or to notice a lost lease (default 50ms).
	CheckInterval time.Duration
	// ElectionJitter is the maximum random delay before campaigning once no
	// lease is live (default 150ms); ElectTimeout bounds one election round
	// (default 10s).
	ElectionJitter time.Duration
	ElectTimeout   time.Duration
	// MaxBodyBytes caps request bodies (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the HTTP server's graceful shutdown (default 5s).
	ShutdownTimeout time.Duration
	// EnablePProf serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the API, on every master, and turns on mutex and
	// block profiling for the process. Off by default: profiles show the
	// command line and cost CPU while they are taken.
	EnablePProf bool

	// Ready, if set, is called once, when the API is listening and the
	// master is following or leading.
	Ready func()
	// Heartbeat, if set, is called every CheckInterval, from a goroutine
	// Run owns, with a one-line status ("leading", "following leader
	// host:port", "waiting for quorum: 1 of 2 replicas reachable", ...). It
	// must not block.
	Heartbeat func(status string)

	// Extra, if set, serves every path under /replog/ (the appliance's
	// replicated-log administration: status, members). It is mounted as it
	// is: it does its own leader checks.
	Extra http.Handler

	// Logger receives the master's logs (default: discard).
	Logger hclog.Logger
	// Now returns the time for timestamps written into log entries and for
	// uptime (default time.Now).
	Now func() time.Time
	// Rand draws election jitter (default: a randomly seeded source).
	Rand *rand.Rand
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("id: must be set"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d out of range", c.Port))
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		errs = append(errs, fmt.Errorf("advertise_port: %d out of range", c.AdvertisePort))
	}
	if c.IP != "" && net.ParseIP(c.IP) == nil {
		errs = append(errs, fmt.Errorf("ip: %q is not an IP address", c.IP))
	}
	if c.AdvertiseIP != "" && net.ParseIP(c.AdvertiseIP) == nil {
		errs = append(errs, fmt.Errorf("advertise_ip: %q is not an IP address", c.AdvertiseIP))
	}
	if c.Quorum < 0 {
		errs = append(errs, fmt.Errorf("quorum: %d is negative", c.Quorum))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"registry_store_timeout", c.RegistryStoreTimeout},
		{"registry_fetch_timeout", c.RegistryFetchTimeout},
		{"lease", c.Lease},
		{"lease_margin", c.LeaseMargin},
		{"lease_grace", c.LeaseGrace},
		{"check_interval", c.CheckInterval},
		{"election_jitter", c.ElectionJitter},
		{"elect_timeout", c.ElectTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"snapshot_entries", c.SnapshotEntries},
		{"snapshot_bytes", c.SnapshotBytes},
		{"max_batch_ops", c.MaxBatchOps},
		{"max_in_flight", c.MaxInFlight},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", n.name, n.v))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is negative", c.MaxBodyBytes))
	}
	if c.Lease > 0 && c.LeaseMargin >= c.Lease {
		errs = append(errs, fmt.Errorf("lease_margin: %v must be below lease %v", c.LeaseMargin, c.Lease))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every unset optional field at its default.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RegistryStoreTimeout, 20*time.Second)
	def(&c.RegistryFetchTimeout, time.Minute)
	def(&c.CheckInterval, 50*time.Millisecond)
	def(&c.LeaseGrace, time.Second)
	def(&c.ElectionJitter, 150*time.Millisecond)
	def(&c.ElectTimeout, 10*time.Second)
	def(&c.ShutdownTimeout, 5*time.Second)
	if c.LeaseMargin == 0 {
		c.LeaseMargin = max(c.Lease/10, time.Millisecond)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 4 << 20
	}
	if c.MaxBatchOps == 0 {
		c.MaxBatchOps = 128
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 8
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Flags == nil {
		c.Flags = map[string]string{}
	}
	return c
}
