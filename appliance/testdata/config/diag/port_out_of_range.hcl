master {
  port      = 70000
  peer_port = 0
}
