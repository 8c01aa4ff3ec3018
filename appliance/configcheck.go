package appliance

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/regent-ha/regent/supervisor"
)

// logLevels are the accepted values of log_level.
var logLevels = []string{"trace", "debug", "info", "warn", "error", "off"}

// check returns every semantic problem of the merged configuration, each
// pointing at the place that set the offending value.
func (c *Config) check() hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(d *hcl.Diagnostic) {
		if d != nil {
			diags = append(diags, d)
		}
	}

	if c.Cluster != "" && !validClusterName(c.Cluster) {
		add(c.problem("cluster", "Invalid cluster name",
			fmt.Sprintf("%q: use letters, digits, '.', '_' and '-' only, at most 64 characters.", c.Cluster)))
	}
	if c.WorkDir == "" || !filepath.IsAbs(c.WorkDir) {
		add(c.problem("work_dir", "Relative work_dir",
			fmt.Sprintf("work_dir must be an absolute path, not %q: the master's data must not depend on the directory it was started in.", c.WorkDir)))
	}
	if lvl := strings.ToLower(c.LogLevel); !slices.Contains(logLevels, lvl) {
		add(c.problem("log_level", "Unknown log level",
			fmt.Sprintf("%q is not a log level; use one of %s.%s", c.LogLevel, strings.Join(logLevels, ", "), suggest(lvl, logLevels))))
	} else {
		c.LogLevel = lvl
	}

	m := &c.Master
	if m.Quorum < 1 {
		add(c.problem("master.quorum", "Quorum below 1",
			fmt.Sprintf("quorum is %d; a quorum is at least one replica.", m.Quorum)))
	} else {
		most := 2*m.Quorum - 1
		switch {
		case len(m.Masters) > most:
			add(c.problem("master.masters", "More masters than the quorum allows",
				fmt.Sprintf("%d masters are listed, but quorum %d allows at most 2·%d−1 = %d: with more, two disjoint quorums could each elect a leader. Raise quorum to %d or list fewer masters.",
					len(m.Masters), m.Quorum, m.Quorum, most, (len(m.Masters)+2)/2)))
		case len(m.Masters) > 0 && len(m.Masters) < m.Quorum:
			add(c.problem("master.quorum", "Quorum larger than the masters",
				fmt.Sprintf("quorum %d can never be reached with %d masters listed.", m.Quorum, len(m.Masters))))
		case len(m.Masters) == 0 && m.Quorum > 1:
			add(c.problem("master.quorum", "Quorum without masters",
				fmt.Sprintf("quorum %d needs the masters list: the peer addresses of all %d to %d masters.", m.Quorum, m.Quorum, most)))
		}
	}
	seen := map[string]int{}
	for i, addr := range m.Masters {
		if err := checkHostPort(addr); err != nil {
			add(c.elementProblem("master.masters", i, "Invalid master address",
				fmt.Sprintf("%q: %v; write host:port, e.g. \"10.0.0.1:5051\".", addr, err)))
			continue
		}
		if j, dup := seen[addr]; dup {
			add(c.elementProblem("master.masters", i, "Duplicate master address",
				fmt.Sprintf("%q is listed twice (elements %d and %d).", addr, j, i)))
		}
		seen[addr] = i
	}
	if _, err := netip.ParseAddr(m.IP); err != nil {
		add(c.problem("master.ip", "Invalid IP address",
			fmt.Sprintf("%q is not an IP address; use e.g. \"0.0.0.0\" for every interface.", m.IP)))
	}
	if m.AdvertiseIP != "" {
		if a, err := netip.ParseAddr(m.AdvertiseIP); err != nil {
			add(c.problem("master.advertise_ip", "Invalid IP address",
				fmt.Sprintf("%q is not an IP address.", m.AdvertiseIP)))
		} else if a.IsUnspecified() {
			add(c.problem("master.advertise_ip", "Unspecified advertise_ip",
				fmt.Sprintf("%q cannot be reached by others; advertise an address of this host.", m.AdvertiseIP)))
		}
	}
	if m.AdvertisePeer != "" {
		if err := checkHostPort(m.AdvertisePeer); err != nil {
			add(c.problem("master.advertise_peer", "Invalid peer address",
				fmt.Sprintf("%q: %v; write host:port.", m.AdvertisePeer, err)))
		} else if len(m.Masters) > 0 && !slices.Contains(m.Masters, m.AdvertisePeer) {
			add(c.problem("master.advertise_peer", "Peer address not among the masters",
				fmt.Sprintf("%q is not in masters: the others accept only the replicas the masters list names. Write this master's entry of the list.", m.AdvertisePeer)))
		}
	}
	for _, p := range []struct {
		name   string
		v      int
		zeroOK bool
	}{
		{"master.port", m.Port, false},
		{"master.peer_port", m.PeerPort, false},
		{"master.advertise_port", m.AdvertisePort, true}, // 0: the port
	} {
		low := 1
		if p.zeroOK {
			low = 0
		}
		if p.v < low || p.v > 65535 {
			add(c.problem(p.name, "Port out of range",
				fmt.Sprintf("%d is not a port: use %d to 65535.", p.v, low)))
		}
	}
	if m.Port == m.PeerPort {
		add(c.problem("master.peer_port", "Port used twice",
			fmt.Sprintf("peer_port and port are both %d; replica traffic needs its own port.", m.Port)))
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		name := "master.tls.cert_file"
		if m.TLS.CertFile == "" {
			name = "master.tls.key_file"
		}
		add(c.problem(name, "Incomplete TLS configuration",
			"cert_file and key_file go together: set both to turn TLS on, or neither."))
	}
	if m.TLS.CAFile != "" && m.TLS.CertFile == "" {
		add(c.problem("master.tls.ca_file", "Incomplete TLS configuration",
			"ca_file needs cert_file and key_file: peers check each other's certificates."))
	}

	s := &c.Supervisor
	for _, d := range []struct {
		name   string
		v      time.Duration
		zeroOK bool
	}{
		{"master.registry_store_timeout", m.RegistryStoreTimeout, false},
		{"master.registry_fetch_timeout", m.RegistryFetchTimeout, false},
		{"supervisor.stop_timeout", s.StopTimeout, false},
		{"supervisor.min_uptime", s.MinUptime, true},
		{"supervisor.backoff_initial", s.BackoffInitial, false},
		{"supervisor.backoff_max", s.BackoffMax, false},
		{"supervisor.backoff_reset_after", s.BackoffResetAfter, true},
		{"supervisor.restart_window", s.RestartWindow, false},
		{"supervisor.watchdog_timeout", s.WatchdogTimeout, true}, // 0: off
		{"supervisor.ready_timeout", s.ReadyTimeout, true},       // 0: off
	} {
		switch {
		case d.v < 0:
			add(c.problem(d.name, "Negative duration", fmt.Sprintf("%s is negative.", d.v)))
		case d.v == 0 && !d.zeroOK:
			add(c.problem(d.name, "Zero duration", "The duration must be positive."))
		}
	}
	if s.BackoffMax > 0 && s.BackoffInitial > s.BackoffMax {
		add(c.problem("supervisor.backoff_max", "Backoff cap below its start",
			fmt.Sprintf("backoff_max %s is below backoff_initial %s.", s.BackoffMax, s.BackoffInitial)))
	}
	if s.MaxRestarts < 0 {
		add(c.problem("supervisor.max_restarts", "Negative restart budget",
			fmt.Sprintf("max_restarts is %d; use 0 for no limit.", s.MaxRestarts)))
	}
	for _, n := range s.Notify {
		name := notifySetting(n.Name)
		if len(n.Exec) == 0 || n.Exec[0] == "" {
			add(c.problem(name+".exec", "Empty exec",
				fmt.Sprintf("notify %q: exec needs a command, e.g. [\"/usr/local/bin/page\", \"regent\"].", n.Name)))
		}
		for i, ev := range n.Events {
			if _, err := supervisor.ParseEvent(ev); err != nil {
				add(c.elementProblem(name+".events", i, "Unknown notify event",
					fmt.Sprintf("notify %q: %v.%s", n.Name, err, suggest(ev, notifyEvents()))))
			}
		}
	}
	return diags
}

// suggest returns ` Did you mean "x"?` (hcl's wording) for the candidate
// nearest to word, or "".
func suggest(word string, candidates []string) string {
	if best, ok := nearest(word, candidates); ok {
		return fmt.Sprintf(" Did you mean %q?", best)
	}
	return ""
}

// notifyEvents are the names the supervisor accepts for notify events.
func notifyEvents() []string {
	var names []string
	for e := supervisor.Event(1); ; e++ {
		name := e.String()
		if _, err := supervisor.ParseEvent(name); err != nil {
			return names
		}
		names = append(names, name)
	}
}

// problem is an error diagnostic about setting name, pointing at where its
// value was set: a file range, a flag, or the default.
func (c *Config) problem(name, summary, detail string) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	src := c.Sources[name]
	switch {
	case src.File != "":
		d.Subject = src.Range.Ptr()
	case src.Flag != "":
		d.Summary += " (flag --" + src.Flag + ")"
	default:
		d.Summary += " (default " + name + ")"
	}
	return d
}

// elementProblem is problem pointing at element i of a list setting when the
// file wrote the list out.
func (c *Config) elementProblem(name string, i int, summary, detail string) *hcl.Diagnostic {
	d := c.problem(name, summary, detail)
	if src := c.Sources[name]; src.expr != nil {
		if elems, diags := hcl.ExprList(src.expr); !diags.HasErrors() && i < len(elems) {
			d.Subject = elems[i].Range().Ptr()
		}
	}
	return d
}

// checkHostPort checks a host:port address.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1 to 65535", port)
	}
	return nil
}

func validClusterName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}
