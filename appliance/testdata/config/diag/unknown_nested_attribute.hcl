master {
  quorom = 2
  tls {
    cert = "/etc/regent.d/cert.pem"
  }
}
