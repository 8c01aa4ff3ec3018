supervisor {
  notify "pager" {
    exec = []
  }
}
