supervisor {
  stop_timeout = "30"
}
