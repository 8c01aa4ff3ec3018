master {
  quorum = 
}
