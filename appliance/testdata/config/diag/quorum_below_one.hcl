master {
  quorum = 0
}
