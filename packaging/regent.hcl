# regent configuration. Every *.hcl file in /etc/regent.d is read, in lexical
# order (see "regent config show" for the merged result and where each value
# came from). This file is the package's default: one master on this host,
# reachable only from this host. It is a conffile: upgrades keep your edits.
#
# Check a change before applying it:  regent config validate -config /etc/regent.d
# Apply it:                           systemctl reload regent
# Every option, with a three-master example: /usr/share/doc/regent and "man regent".

# Name of the cluster; every master of one cluster must use the same name.
cluster = "regent"

# Where the master keeps its replica of the replicated log. The systemd unit
# makes this directory (StateDirectory=regent) and lets the service write
# nowhere else.
work_dir = "/var/lib/regent"

log_level = "info"

master {
  # A single master is its own quorum. For N-1 failures tolerated, run 2N-1
  # masters with quorum = N and list every master's peer address below.
  quorum  = 1
  masters = ["127.0.0.1:5051"]

  # API (Mesos-compatible) and peer ports. Bound to loopback until you open
  # them: set ip = "0.0.0.0" (and TLS or peer_secret) to serve other hosts.
  ip        = "127.0.0.1"
  port      = 5050
  peer_port = 5051
}
