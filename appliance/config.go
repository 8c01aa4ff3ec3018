package appliance

import (
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultConfigPath is where regent reads its configuration when -config is
// not given: a directory of *.hcl files merged in lexical order.
const DefaultConfigPath = "/etc/regent.d"

// Config is regent's decoded configuration: defaults, then the files, then
// the command-line flags. It is the HCL schema of docs/contracts.md in plain
// Go; durations are parsed. Runtime configurations (supervisor.Config,
// master.Config, replog's) are built from it.
type Config struct {
	// Cluster names the cluster. Optional; masters of another cluster are
	// refused.
	Cluster string
	// WorkDir is the absolute directory the master keeps its data in (the
	// replicated log under WorkDir/replicated_log).
	WorkDir string
	// LogLevel is one of trace, debug, info, warn, error, off (lower case).
	LogLevel string
	// LogJSON forces JSON logs even on a terminal.
	LogJSON bool
	// Master configures the master process and its replica.
	Master MasterConfig
	// Supervisor configures "regent run".
	Supervisor SupervisorConfig

	// Sources says where each setting's value came from, by setting name
	// ("master.quorum", "supervisor.notify.pager"). Every setting has one.
	Sources map[string]Source
	// Files are the configuration files read, in the order they were merged.
	Files []string

	// files holds the parsed files, for printing diagnostics with snippets.
	files map[string]*hcl.File
}

// MasterConfig is the master block.
type MasterConfig struct {
	// Quorum is the number of replicas that make a quorum (Mesos --quorum).
	// At most 2·Quorum−1 masters may be listed.
	Quorum int
	// Masters are the peer addresses (host:port) of every master, this one
	// included: the whitelist of replicas. Empty means a single master.
	Masters []string
	// IP is the address the API listens on.
	IP string
	// Port is the API's port.
	Port int
	// PeerPort is the port replica traffic listens on (same IP).
	PeerPort int
	// AdvertiseIP is the IP others are told for the API; empty means IP (or
	// the host's address when IP is unspecified).
	AdvertiseIP string
	// AdvertisePort is the API port others are told; 0 means Port.
	AdvertisePort int
	// AdvertisePeer is the host:port other replicas are told; empty means
	// the advertised IP and PeerPort.
	AdvertisePeer string
	// Hostname is the name advertised for this master; empty means the
	// system's host name.
	Hostname string
	// LogAutoInitialize lets an empty log initialise itself when every
	// expected replica is empty (Mesos --log_auto_initialize).
	LogAutoInitialize bool
	// RegistryStoreTimeout bounds one registry write before the master gives
	// up leadership by exiting.
	RegistryStoreTimeout time.Duration
	// RegistryFetchTimeout bounds the registry recovery at election.
	RegistryFetchTimeout time.Duration
	// PeerSecret is the HMAC key of peer handshakes when TLS is off.
	PeerSecret string
	// EnablePProf serves Go's runtime profiles under /debug/pprof/ on the
	// API port (off by default).
	EnablePProf bool
	// TLS configures TLS for the API and peer traffic.
	TLS TLSConfig
}

// TLSConfig is the master's tls block. TLS is on when CertFile is set.
type TLSConfig struct {
	// CAFile is the PEM bundle peers' certificates are checked against.
	CAFile string
	// CertFile is this master's PEM certificate.
	CertFile string
	// KeyFile is the PEM private key of CertFile.
	KeyFile string
}

// SupervisorConfig is the supervisor block: how "regent run" restarts the
// master.
type SupervisorConfig struct {
	// StopTimeout is the time between SIGTERM and SIGKILL when stopping the
	// master.
	StopTimeout time.Duration
	// MinUptime is how long a master must run to count as started.
	MinUptime time.Duration
	// BackoffInitial is the first restart delay.
	BackoffInitial time.Duration
	// BackoffMax caps the restart delay.
	BackoffMax time.Duration
	// BackoffResetAfter is the healthy uptime after which the delay starts
	// over.
	BackoffResetAfter time.Duration
	// MaxRestarts is how many restarts RestartWindow may hold before the
	// supervisor gives up to systemd.
	MaxRestarts int
	// RestartWindow is the window of MaxRestarts.
	RestartWindow time.Duration
	// WatchdogTimeout is how long a ready master may stay silent before it is
	// killed; 0 disables the check.
	WatchdogTimeout time.Duration
	// ReadyTimeout is how long a starting master may take to become ready; 0
	// disables the check.
	ReadyTimeout time.Duration
	// Notify are the notification hooks, in the order they were first
	// defined.
	Notify []NotifyConfig
}

// NotifyConfig is one notify block: a command run on supervision events.
type NotifyConfig struct {
	// Name is the block's label.
	Name string
	// Exec is the command and its arguments; no shell is involved.
	Exec []string
	// Events are the events that run it (exited, backoff, fatal, gave_up,
	// recovered); empty means all of them.
	Events []string
}

// Source says where a setting's value came from.
type Source struct {
	// File is the configuration file that set the value; empty for a default
	// or a flag.
	File string
	// Flag is the command-line flag that set the value, without dashes;
	// empty for a default or a file.
	Flag string
	// Range is where in File the value is written.
	Range hcl.Range

	// expr is the value's expression, for pointing at one list element.
	expr hcl.Expression
}

// String returns "default", "flag --NAME" or "FILE:LINE".
func (s Source) String() string {
	switch {
	case s.Flag != "":
		return "flag --" + s.Flag
	case s.File != "":
		return s.Range.Filename + ":" + strconv.Itoa(s.Range.Start.Line)
	default:
		return "default"
	}
}

// DefaultConfig returns the configuration with every default and no sources.
func DefaultConfig() *Config {
	return &Config{
		Cluster:  "",
		WorkDir:  "/var/lib/regent",
		LogLevel: "info",
		LogJSON:  false,
		Master: MasterConfig{
			Quorum:               1,
			IP:                   "0.0.0.0",
			Port:                 5050,
			PeerPort:             5051,
			LogAutoInitialize:    true,
			RegistryStoreTimeout: 20 * time.Second,
			RegistryFetchTimeout: 60 * time.Second,
		},
		Supervisor: SupervisorConfig{
			StopTimeout:       30 * time.Second,
			MinUptime:         10 * time.Second,
			BackoffInitial:    100 * time.Millisecond,
			BackoffMax:        30 * time.Second,
			BackoffResetAfter: 60 * time.Second,
			MaxRestarts:       10,
			RestartWindow:     5 * time.Minute,
			WatchdogTimeout:   30 * time.Second,
			ReadyTimeout:      120 * time.Second,
		},
	}
}

// The file format: one struct per block. Every attribute is kept as an
// *hcl.Attribute so that the loader knows whether a file set it and where;
// the settings table decodes it. No remain fields: anything unknown is an
// error with a "did you mean" suggestion from hcl.
type fileConfig struct {
	Cluster    *hcl.Attribute  `hcl:"cluster,optional"`
	WorkDir    *hcl.Attribute  `hcl:"work_dir,optional"`
	LogLevel   *hcl.Attribute  `hcl:"log_level,optional"`
	LogJSON    *hcl.Attribute  `hcl:"log_json,optional"`
	Master     *fileMaster     `hcl:"master,block"`
	Supervisor *fileSupervisor `hcl:"supervisor,block"`
}

type fileMaster struct {
	Quorum               *hcl.Attribute `hcl:"quorum,optional"`
	Masters              *hcl.Attribute `hcl:"masters,optional"`
	IP                   *hcl.Attribute `hcl:"ip,optional"`
	Port                 *hcl.Attribute `hcl:"port,optional"`
	PeerPort             *hcl.Attribute `hcl:"peer_port,optional"`
	AdvertiseIP          *hcl.Attribute `hcl:"advertise_ip,optional"`
	AdvertisePort        *hcl.Attribute `hcl:"advertise_port,optional"`
	AdvertisePeer        *hcl.Attribute `hcl:"advertise_peer,optional"`
	Hostname             *hcl.Attribute `hcl:"hostname,optional"`
	LogAutoInitialize    *hcl.Attribute `hcl:"log_auto_initialize,optional"`
	RegistryStoreTimeout *hcl.Attribute `hcl:"registry_store_timeout,optional"`
	RegistryFetchTimeout *hcl.Attribute `hcl:"registry_fetch_timeout,optional"`
	PeerSecret           *hcl.Attribute `hcl:"peer_secret,optional"`
	EnablePProf          *hcl.Attribute `hcl:"enable_pprof,optional"`
	TLS                  *fileTLS       `hcl:"tls,block"`
}

type fileTLS struct {
	CAFile   *hcl.Attribute `hcl:"ca_file,optional"`
	CertFile *hcl.Attribute `hcl:"cert_file,optional"`
	KeyFile  *hcl.Attribute `hcl:"key_file,optional"`
}

type fileSupervisor struct {
	StopTimeout       *hcl.Attribute `hcl:"stop_timeout,optional"`
	MinUptime         *hcl.Attribute `hcl:"min_uptime,optional"`
	BackoffInitial    *hcl.Attribute `hcl:"backoff_initial,optional"`
	BackoffMax        *hcl.Attribute `hcl:"backoff_max,optional"`
	BackoffResetAfter *hcl.Attribute `hcl:"backoff_reset_after,optional"`
	MaxRestarts       *hcl.Attribute `hcl:"max_restarts,optional"`
	RestartWindow     *hcl.Attribute `hcl:"restart_window,optional"`
	WatchdogTimeout   *hcl.Attribute `hcl:"watchdog_timeout,optional"`
	ReadyTimeout      *hcl.Attribute `hcl:"ready_timeout,optional"`
	Notify            []fileNotify   `hcl:"notify,block"`
}

type fileNotify struct {
	Name       string         `hcl:"name,label"`
	Exec       *hcl.Attribute `hcl:"exec"`
	Events     *hcl.Attribute `hcl:"events,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
	LabelRange hcl.Range      `hcl:"name,label_range"`
}

// valueKind is the type of a setting's value.
type valueKind int

const (
	kindString valueKind = iota + 1
	kindBool
	kindInt
	kindDuration
	kindStrings
)

// setting is one scalar or list option: where a file sets it, which flag sets
// it, and which Config field holds it. The table below is the one list of
// options that loading, flags, "config show" and the docs follow.
type setting struct {
	name  string // "master.quorum"
	flag  string // Mesos-style flag name, "" if none
	kind  valueKind
	usage string // flag help, lower case
	attr  func(f *fileConfig) *hcl.Attribute
	field func(c *Config) any // *string, *bool, *int, *time.Duration or *[]string
}

func masterAttr(get func(m *fileMaster) *hcl.Attribute) func(*fileConfig) *hcl.Attribute {
	return func(f *fileConfig) *hcl.Attribute {
		if f.Master == nil {
			return nil
		}
		return get(f.Master)
	}
}

func tlsAttr(get func(t *fileTLS) *hcl.Attribute) func(*fileConfig) *hcl.Attribute {
	return func(f *fileConfig) *hcl.Attribute {
		if f.Master == nil || f.Master.TLS == nil {
			return nil
		}
		return get(f.Master.TLS)
	}
}

func supervisorAttr(get func(s *fileSupervisor) *hcl.Attribute) func(*fileConfig) *hcl.Attribute {
	return func(f *fileConfig) *hcl.Attribute {
		if f.Supervisor == nil {
			return nil
		}
		return get(f.Supervisor)
	}
}

var settings = []setting{
	{"cluster", "cluster", kindString, "`name` of the cluster",
		func(f *fileConfig) *hcl.Attribute { return f.Cluster }, func(c *Config) any { return &c.Cluster }},
	{"work_dir", "work_dir", kindString, "absolute `directory` of the master's data",
		func(f *fileConfig) *hcl.Attribute { return f.WorkDir }, func(c *Config) any { return &c.WorkDir }},
	{"log_level", "log_level", kindString, "log `level`: trace, debug, info, warn, error or off",
		func(f *fileConfig) *hcl.Attribute { return f.LogLevel }, func(c *Config) any { return &c.LogLevel }},
	{"log_json", "log_json", kindBool, "log JSON even on a terminal",
		func(f *fileConfig) *hcl.Attribute { return f.LogJSON }, func(c *Config) any { return &c.LogJSON }},

	{"master.quorum", "quorum", kindInt, "`n` replicas make a quorum (at most 2·n−1 masters)",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.Quorum }), func(c *Config) any { return &c.Master.Quorum }},
	{"master.masters", "masters", kindStrings, "comma-separated peer `addresses` (host:port) of every master",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.Masters }), func(c *Config) any { return &c.Master.Masters }},
	{"master.ip", "ip", kindString, "IP `address` the API listens on",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.IP }), func(c *Config) any { return &c.Master.IP }},
	{"master.port", "port", kindInt, "API `port`",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.Port }), func(c *Config) any { return &c.Master.Port }},
	{"master.peer_port", "peer_port", kindInt, "replica traffic `port`",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.PeerPort }), func(c *Config) any { return &c.Master.PeerPort }},
	{"master.advertise_ip", "advertise_ip", kindString, "IP `address` others are told for the API",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.AdvertiseIP }), func(c *Config) any { return &c.Master.AdvertiseIP }},
	{"master.advertise_port", "advertise_port", kindInt, "API `port` others are told (0: the port)",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.AdvertisePort }), func(c *Config) any { return &c.Master.AdvertisePort }},
	{"master.advertise_peer", "advertise_peer", kindString, "`host:port` other replicas are told",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.AdvertisePeer }), func(c *Config) any { return &c.Master.AdvertisePeer }},
	{"master.hostname", "hostname", kindString, "host `name` advertised for this master",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.Hostname }), func(c *Config) any { return &c.Master.Hostname }},
	{"master.log_auto_initialize", "log_auto_initialize", kindBool, "initialise an empty log when every expected replica is empty",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.LogAutoInitialize }), func(c *Config) any { return &c.Master.LogAutoInitialize }},
	{"master.registry_store_timeout", "registry_store_timeout", kindDuration, "longest `duration` of one registry write before the master exits",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.RegistryStoreTimeout }), func(c *Config) any { return &c.Master.RegistryStoreTimeout }},
	{"master.registry_fetch_timeout", "registry_fetch_timeout", kindDuration, "longest `duration` of the registry recovery after an election",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.RegistryFetchTimeout }), func(c *Config) any { return &c.Master.RegistryFetchTimeout }},
	{"master.enable_pprof", "enable_pprof", kindBool, "serve Go's runtime profiles under /debug/pprof/ on the API",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.EnablePProf }), func(c *Config) any { return &c.Master.EnablePProf }},
	{"master.peer_secret", "", kindString, "",
		masterAttr(func(m *fileMaster) *hcl.Attribute { return m.PeerSecret }), func(c *Config) any { return &c.Master.PeerSecret }},
	{"master.tls.ca_file", "", kindString, "",
		tlsAttr(func(t *fileTLS) *hcl.Attribute { return t.CAFile }), func(c *Config) any { return &c.Master.TLS.CAFile }},
	{"master.tls.cert_file", "", kindString, "",
		tlsAttr(func(t *fileTLS) *hcl.Attribute { return t.CertFile }), func(c *Config) any { return &c.Master.TLS.CertFile }},
	{"master.tls.key_file", "", kindString, "",
		tlsAttr(func(t *fileTLS) *hcl.Attribute { return t.KeyFile }), func(c *Config) any { return &c.Master.TLS.KeyFile }},

	{"supervisor.stop_timeout", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.StopTimeout }), func(c *Config) any { return &c.Supervisor.StopTimeout }},
	{"supervisor.min_uptime", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.MinUptime }), func(c *Config) any { return &c.Supervisor.MinUptime }},
	{"supervisor.backoff_initial", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.BackoffInitial }), func(c *Config) any { return &c.Supervisor.BackoffInitial }},
	{"supervisor.backoff_max", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.BackoffMax }), func(c *Config) any { return &c.Supervisor.BackoffMax }},
	{"supervisor.backoff_reset_after", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.BackoffResetAfter }), func(c *Config) any { return &c.Supervisor.BackoffResetAfter }},
	{"supervisor.max_restarts", "", kindInt, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.MaxRestarts }), func(c *Config) any { return &c.Supervisor.MaxRestarts }},
	{"supervisor.restart_window", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.RestartWindow }), func(c *Config) any { return &c.Supervisor.RestartWindow }},
	{"supervisor.watchdog_timeout", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.WatchdogTimeout }), func(c *Config) any { return &c.Supervisor.WatchdogTimeout }},
	{"supervisor.ready_timeout", "", kindDuration, "",
		supervisorAttr(func(s *fileSupervisor) *hcl.Attribute { return s.ReadyTimeout }), func(c *Config) any { return &c.Supervisor.ReadyTimeout }},
}

func settingByFlag(flag string) *setting {
	for i := range settings {
		if settings[i].flag != "" && settings[i].flag == flag {
			return &settings[i]
		}
	}
	return nil
}
