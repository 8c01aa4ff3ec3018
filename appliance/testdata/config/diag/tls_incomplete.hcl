master {
  tls {
    cert_file = "/etc/regent.d/tls/cert.pem"
  }
}
