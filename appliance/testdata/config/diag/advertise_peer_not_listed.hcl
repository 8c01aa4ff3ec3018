master {
  quorum         = 2
  masters        = ["10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"]
  advertise_peer = "10.0.0.4:5051"
}
