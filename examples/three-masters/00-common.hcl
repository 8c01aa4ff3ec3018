# A three-master cluster, one file per concern as it would sit in
# /etc/regent.d on every host: 00-common.hcl is the same everywhere, and
# 10-host.hcl (below, here for host 10.0.0.1) differs per host. Files are
# merged in lexical order; a value in a later file replaces an earlier one.
# Three masters with quorum 2 tolerate one failure.

cluster  = "prod"
work_dir = "/var/lib/regent"

# Environment values come in as env.NAME; try() gives a fallback when the
# variable is unset (systemd's EnvironmentFile=/etc/regent.d/regent.env).
log_level = try(env.REGENT_LOG_LEVEL, "info")

master {
  quorum = 2

  # Peer addresses of every master, this one included: the whitelist of
  # replicas. At most 2·quorum−1 of them.
  masters = ["10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"]

  port      = 5050
  peer_port = 5051

  # The log initialises itself only when all three replicas are empty.
  log_auto_initialize = true

  # HMAC key that peers prove in their handshake when TLS is off. Keep it out
  # of the file: set REGENT_PEER_SECRET in the environment.
  peer_secret = try(env.REGENT_PEER_SECRET, "")
}

supervisor {
  notify "pager" {
    exec   = ["/usr/local/bin/page", "regent"]
    events = ["fatal", "gave_up"]
  }
  # A hook for every event: events omitted.
  notify "audit" {
    exec = ["/usr/bin/logger", "-t", "regent-audit"]
  }
}
