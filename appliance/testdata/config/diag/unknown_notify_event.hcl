supervisor {
  notify "pager" {
    exec   = ["/usr/local/bin/page"]
    events = ["fatal", "gaveup"]
  }
}
