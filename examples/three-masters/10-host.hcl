# What differs on host 10.0.0.1 (the other hosts change the addresses).

master {
  # Listen on every interface; tell others 10.0.0.1.
  ip           = "0.0.0.0"
  advertise_ip = "10.0.0.1"
  # Behind a port forward, others would be told another port: 0 = port.
  advertise_port = 0
  # The peer address other replicas dial, one of masters; empty = whichever of
  # advertise_ip:peer_port, ip:peer_port or a local address is in masters.
  advertise_peer = "10.0.0.1:5051"
  # Host name shown in MasterInfo; empty = the system's.
  hostname = "master-1.example.net"

  tls {
    ca_file   = "/etc/regent.d/tls/ca.pem"
    cert_file = "/etc/regent.d/tls/master-1.pem"
    key_file  = "/etc/regent.d/tls/master-1-key.pem"
  }
}
