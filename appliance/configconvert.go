package appliance

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/master"
	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/supervisor"
)

// The conversions from the decoded configuration into each package's runtime
// configuration (style.md C10.6). They fill what the configuration decides;
// the wiring (run.go, master.go) adds what only it knows: paths, listeners,
// loggers, callbacks.

// SupervisorConfig returns the supervisor settings of c: the restart policy,
// the timeouts and the notification hooks, over supervisor.DefaultConfig.
// The caller sets Path, Args, Env, Dir, StatePath, Logger and Reload.
func (c *Config) SupervisorConfig() (supervisor.Config, error) {
	s := &c.Supervisor
	sc := supervisor.DefaultConfig()
	sc.Policy.MinUptime = s.MinUptime
	sc.Policy.BackoffInitial = s.BackoffInitial
	sc.Policy.BackoffMax = s.BackoffMax
	sc.Policy.BackoffResetAfter = s.BackoffResetAfter
	sc.Policy.MaxRestarts = s.MaxRestarts
	sc.Policy.RestartWindow = s.RestartWindow
	sc.StopTimeout = s.StopTimeout
	sc.WatchdogTimeout = s.WatchdogTimeout
	sc.ReadyTimeout = s.ReadyTimeout
	for _, n := range s.Notify {
		h := supervisor.Hook{Name: n.Name, Exec: append([]string(nil), n.Exec...)}
		for _, name := range n.Events {
			ev, err := supervisor.ParseEvent(name)
			if err != nil {
				return supervisor.Config{}, fmt.Errorf("notify %q: %w", n.Name, err)
			}
			h.Events = append(h.Events, ev)
		}
		sc.Hooks = append(sc.Hooks, h)
	}
	return sc, nil
}

// MasterConfig returns the master settings of c: identity, addresses,
// quorum, registry timeouts, the version and the flags /flags reports. The
// caller sets ID, Listener, Ready, Heartbeat, Logger and the rest.
func (c *Config) MasterConfig() master.Config {
	m := &c.Master
	return master.Config{
		Cluster:              c.Cluster,
		Hostname:             m.Hostname,
		IP:                   m.IP,
		Port:                 m.Port,
		AdvertiseIP:          m.AdvertiseIP,
		AdvertisePort:        m.AdvertisePort,
		Quorum:               m.Quorum,
		Version:              Version,
		Flags:                c.Flags(),
		RegistryStoreTimeout: m.RegistryStoreTimeout,
		RegistryFetchTimeout: m.RegistryFetchTimeout,
		EnablePProf:          m.EnablePProf,
	}
}

// ReplogConfig returns the replicated-log settings of c: this replica's
// advertised peer address, the masters, the quorum and auto-initialisation.
// The caller sets Logger and the timing settings.
//
// A single master (masters empty) is its own whitelist: Masters is [Addr],
// and Addr falls back to 127.0.0.1:peer_port since no peer dials it.
func (c *Config) ReplogConfig() replog.Config {
	rc := replog.Config{
		Addr:           c.PeerAddr(),
		Masters:        append([]string(nil), c.Master.Masters...),
		Quorum:         c.Master.Quorum,
		AutoInitialize: c.Master.LogAutoInitialize,
	}
	if len(rc.Masters) == 0 {
		if rc.Addr == "" {
			rc.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Master.PeerPort))
		}
		rc.Masters = []string{rc.Addr}
	}
	return rc
}

// PeerAddr is the peer address this master tells the others (host:port).
// advertise_peer wins. Otherwise the candidates are the advertised IP and
// ip (when it is not unspecified), each with peer_port; with a masters list,
// the first candidate that is in the list (the whitelist names every master,
// so this master's address is one of its entries), or "" when none is: the
// wiring then picks the entry that is a local address. advertise_ip alone
// does not move the peer address off the masters list, since it may name an
// API-only front (a forwarder, NAT).
func (c *Config) PeerAddr() string {
	m := &c.Master
	if m.AdvertisePeer != "" {
		return m.AdvertisePeer
	}
	port := strconv.Itoa(m.PeerPort)
	var candidates []string
	if m.AdvertiseIP != "" {
		candidates = append(candidates, net.JoinHostPort(m.AdvertiseIP, port))
	}
	if a, err := netip.ParseAddr(m.IP); err == nil && !a.IsUnspecified() {
		candidates = append(candidates, net.JoinHostPort(m.IP, port))
	}
	for _, cand := range candidates {
		if len(m.Masters) == 0 || slices.Contains(m.Masters, cand) {
			return cand
		}
	}
	return ""
}

// Flags returns the effective settings as Mesos-style flags (name → value),
// for the master's /flags endpoint: flag names where a setting has a flag,
// setting names otherwise; lists comma-separated; secrets redacted.
func (c *Config) Flags() map[string]string {
	out := map[string]string{}
	for i := range settings {
		s := &settings[i]
		name := s.flag
		if name == "" {
			name = s.name
		}
		var v string
		switch p := s.field(c).(type) {
		case *string:
			v = *p
		case *bool:
			v = strconv.FormatBool(*p)
		case *int:
			v = strconv.Itoa(*p)
		case *time.Duration:
			v = formatDuration(*p)
		case *[]string:
			v = strings.Join(*p, ",")
		}
		if s.name == "master.peer_secret" && v != "" {
			v = redacted
		}
		out[name] = v
	}
	return out
}

// reloadInPlace are the settings a running master and supervisor take
// without a restart of the master.
var reloadInPlace = map[string]bool{"log_level": true}

// ReloadActionFor says what a reload from old to new asks of the running
// master: ReloadRestart when a setting the master reads only at start
// changed (cluster, work_dir, log_json, anything in master), ReloadForward
// otherwise (log_level is applied in place; the supervisor block is the
// supervisor's, not the master's).
func ReloadActionFor(old, new *Config) supervisor.ReloadAction {
	for _, name := range ChangedSettings(old, new) {
		if reloadInPlace[name] || strings.HasPrefix(name, "supervisor.") {
			continue
		}
		return supervisor.ReloadRestart
	}
	return supervisor.ReloadForward
}
