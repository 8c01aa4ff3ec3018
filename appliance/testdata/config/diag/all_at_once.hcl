# Every problem is reported in one run, in file order.
work_dir  = "relative"
log_level = "loud"

master {
  quorum  = 0
  port    = -1
  masters = ["nowhere"]
}

supervisor {
  backoff_initial = "1 second"
  backoff_max     = "50ms"
  max_restarts    = -3
  notify "x" {
    exec   = [""]
    events = ["exploded"]
  }
}
