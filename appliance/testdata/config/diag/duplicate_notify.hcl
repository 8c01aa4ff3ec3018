supervisor {
  notify "pager" {
    exec = ["/bin/true"]
  }
  notify "pager" {
    exec = ["/bin/false"]
  }
}
