supervisor {
  notify "pager" {
    events = ["fatal"]
  }
}
