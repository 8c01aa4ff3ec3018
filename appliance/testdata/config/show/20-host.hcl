work_dir = "/srv/regent"

master {
  advertise_ip = "10.0.0.1"
  quorum       = 2
}

supervisor {
  stop_timeout = "1m30s"
}
