package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-ha/regent/replog/paxos"
)

// waitTimeout bounds every wait on real loopback connections.
const waitTimeout = 20 * time.Second

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many log lines contain every one of subs.
func (b *syncBuffer) count(subs ...string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

// node is one transport on a real loopback listener, recording what it
// receives.
type node struct {
	id      paxos.ReplicaID
	cluster paxos.ClusterID
	addr    string
	tr      *Transport
	got     chan paxos.Message
	logs    *syncBuffer
	served  chan error
}

// opts adjusts a node's Config.
type opts func(*Config)

func listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return lis
}

// startNode builds and serves a transport on lis dialing peers. Close runs
// at cleanup.
func startNode(t testing.TB, id paxos.ReplicaID, cluster paxos.ClusterID, lis net.Listener, peers []string, mods ...opts) *node {
	t.Helper()
	n := &node{
		id:      id,
		cluster: cluster,
		addr:    lis.Addr().String(),
		got:     make(chan paxos.Message, 1<<16),
		logs:    &syncBuffer{},
		served:  make(chan error, 1),
	}
	cfg := Config{
		Logger:         hclog.New(&hclog.LoggerOptions{Output: n.logs, Level: hclog.Debug}),
		Self:           func() (paxos.ClusterID, paxos.ReplicaID) { return n.cluster, n.id },
		AdvertiseAddr:  n.addr,
		Peers:          peers,
		Handler:        func(m paxos.Message) { n.got <- m },
		BackoffInitial: time.Millisecond,
		BackoffMax:     4 * time.Millisecond,
		Registerer:     prometheus.NewRegistry(),
	}
	for _, o := range mods {
		o(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("new transport %d: %v", id, err)
	}
	n.tr = tr
	go func() { n.served <- tr.Serve(lis) }()
	t.Cleanup(func() { n.close(t) })
	return n
}

// close closes the transport and checks Serve returned nil. Idempotent.
func (n *node) close(t testing.TB) {
	t.Helper()
	if err := n.tr.Close(); err != nil {
		t.Errorf("close transport %d: %v", n.id, err)
	}
	select {
	case err, ok := <-n.served:
		if ok && err != nil {
			t.Errorf("serve %d: %v", n.id, err)
		}
		if ok {
			close(n.served)
		}
	case <-time.After(waitTimeout):
		t.Errorf("serve %d did not return after close", n.id)
	}
}

// cluster starts len(ids) nodes that all dial each other.
func startCluster(t testing.TB, ids []paxos.ReplicaID, mods ...opts) []*node {
	t.Helper()
	lis := make([]net.Listener, len(ids))
	addrs := make([]string, len(ids))
	for i := range ids {
		lis[i] = listen(t)
		addrs[i] = lis[i].Addr().String()
	}
	nodes := make([]*node, len(ids))
	for i, id := range ids {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		nodes[i] = startNode(t, id, 1, lis[i], peers, mods...)
	}
	return nodes
}

// waitFor waits until cond holds, re-checking whenever tr's connection state
// changes.
func waitFor(t testing.TB, tr *Transport, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		ch := tr.changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; peers %+v", what, tr.Peers())
		}
	}
}

// connectedTo reports whether tr's stream to the peer with id is up.
func connectedTo(tr *Transport, id paxos.ReplicaID) bool {
	for _, p := range tr.Peers() {
		if p.ID == id && p.Connected {
			return true
		}
	}
	return false
}

// waitConnected waits until every node is connected to every other.
func waitConnected(t testing.TB, nodes []*node) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitFor(t, a.tr, "connection to "+b.addr, func() bool { return connectedTo(a.tr, b.id) })
			}
		}
	}
}

// recv returns the next n messages n received, failing after waitTimeout.
func (n *node) recv(t testing.TB, count int) []paxos.Message {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	out := make([]paxos.Message, 0, count)
	for len(out) < count {
		select {
		case m := <-n.got:
			out = append(out, m)
		case <-deadline.C:
			t.Fatalf("replica %d: got %d messages, want %d: %+v", n.id, len(out), count, out)
		}
	}
	return out
}

// msg is a small test message.
func msg(from, to paxos.ReplicaID, pos paxos.Position) paxos.Message {
	return paxos.Message{
		Type:     paxos.MsgWriteRequest,
		Cluster:  1,
		From:     from,
		To:       to,
		Proposal: paxos.Proposal{Round: 3, Replica: from},
		Position: pos,
		Actions: []paxos.Action{{
			Position:  pos,
			Performed: paxos.Proposal{Round: 3, Replica: from},
			Entry:     paxos.Entry{Type: paxos.EntryAppend, Data: []byte("registry update")},
		}},
	}
}

// testPKI is a CA and the PEM files of certificates it signed.
type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key}
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// leaf issues a certificate for 127.0.0.1 usable by server and client, and
// returns the peer TLS config LoadTLS builds from it.
func (p *testPKI) leaf(t testing.TB, name string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, name+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, name+"-key.pem", "PRIVATE KEY", keyDER)
	cfg, err := LoadTLS(p.caFile, certFile, keyFile)
	if err != nil {
		t.Fatalf("load tls: %v", err)
	}
	return cfg
}

var errNotMember = errors.New("not in the masters list")
