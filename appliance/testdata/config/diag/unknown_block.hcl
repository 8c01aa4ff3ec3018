mastr {
  quorum = 1
}
