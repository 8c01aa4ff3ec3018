cluster = "prod"

master {
  quorum      = 2
  masters     = ["10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"]
  peer_secret = env.REGENT_SECRET
}

supervisor {
  max_restarts = 5
  notify "pager" {
    exec   = ["/usr/local/bin/page", "regent"]
    events = ["fatal", "gave_up"]
  }
}
