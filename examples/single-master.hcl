# A single regent master: quorum 1, no peers. Good for trying regent out on
# one host; it tolerates no failure. Copy to /etc/regent.d/regent.hcl.

# Name of the cluster. Masters refuse peers that belong to another cluster.
cluster = "single"

# Absolute directory of the master's data; the replicated log lives in
# <work_dir>/replicated_log. Deleting that directory "replaces" the master.
work_dir = "/var/lib/regent"

# trace, debug, info, warn, error or off. --log_level overrides it.
log_level = "info"

# JSON logs even on a terminal (they are JSON anyway under systemd).
log_json = false

master {
  # One replica is a quorum: a single master needs no masters list.
  quorum = 1

  # The API (Mesos-compatible endpoints, /api/v1, metrics) on 127.0.0.1:5050.
  ip   = "127.0.0.1"
  port = 5050

  # Replica traffic. With one master nobody connects, but the port is bound.
  peer_port = 5051

  # Initialise the empty log on first start.
  log_auto_initialize = true

  # A registry write that takes longer makes the master exit (fail-fast).
  registry_store_timeout = "20s"
  # Bound on recovering the registry after an election.
  registry_fetch_timeout = "60s"

  # Serve Go's runtime profiles (CPU, heap, mutex, goroutines) under
  # /debug/pprof/ on the API port, for `go tool pprof`. Off by default: anyone
  # who reaches the API can read them. --enable_pprof overrides it.
  enable_pprof = false
}

supervisor {
  # SIGTERM, then SIGKILL after this long. Keep it below the unit's
  # TimeoutStopSec.
  stop_timeout = "30s"

  # Restart with exponential backoff from 100ms to 30s; start over after a
  # minute of healthy uptime.
  backoff_initial     = "100ms"
  backoff_max         = "30s"
  backoff_reset_after = "60s"

  # A master must run this long to count as started.
  min_uptime = "10s"

  # More than 10 restarts in 5 minutes: give up and let systemd decide.
  max_restarts   = 10
  restart_window = "5m"

  # A ready master silent for this long is killed; a starting master must be
  # ready within ready_timeout. 0 turns either check off.
  watchdog_timeout = "30s"
  ready_timeout    = "120s"

  # Run a command when the master fails for good or the supervisor gives up.
  # Events: exited, backoff, fatal, gave_up, recovered (all when omitted).
  notify "log" {
    exec   = ["/usr/bin/logger", "-t", "regent-notify"]
    events = ["fatal", "gave_up"]
  }
}
