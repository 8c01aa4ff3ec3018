master {
  quorum         = 2
  masters        = ["10.0.0.1:5051", "10.0.0.2", "10.0.0.3:99999"]
  ip             = "localhost"
  advertise_ip   = "0.0.0.0"
  advertise_peer = ":5051"
}
