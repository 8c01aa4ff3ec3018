master {
  quorum  = 3
  masters = ["10.0.0.1:5051", "10.0.0.2:5051"]
}
