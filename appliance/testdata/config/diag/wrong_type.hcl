log_json = "yes please"
master {
  quorum = "two"
  masters = "10.0.0.1:5051"
}
