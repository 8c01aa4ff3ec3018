master {
  registry_store_timeout = "-5s"
}
