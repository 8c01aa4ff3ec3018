package peer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/peer/peerpb"
)

func sortByPosition(ms []paxos.Message) {
	slices.SortFunc(ms, func(a, b paxos.Message) int {
		if a.From != b.From {
			return int(a.From) - int(b.From)
		}
		return int(a.Position) - int(b.Position)
	})
}

func TestExchangeThreeReplicas(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, []paxos.ReplicaID{11, 22, 33})
	waitConnected(t, nodes)

	// Each replica sends one message to each other replica by ReplicaID and
	// one broadcast; every replica must get two from each other one, in
	// order per sender.
	for _, a := range nodes {
		var batch []paxos.Message
		for _, b := range nodes {
			if b != a {
				batch = append(batch, msg(a.id, b.id, 1))
			}
		}
		batch = append(batch, msg(a.id, 0, 2))
		a.tr.Send(batch)
	}
	for _, b := range nodes {
		got := b.recv(t, 4)
		sortByPosition(got)
		var want []paxos.Message
		for _, a := range nodes {
			if a != b {
				want = append(want, msg(a.id, b.id, 1), msg(a.id, 0, 2))
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("replica %d received (-want +got):\n%s", b.id, diff)
		}
	}

	for _, a := range nodes {
		got := a.tr.Peers()
		var want []replog.Peer
		for _, b := range nodes {
			if b != a {
				want = append(want, replog.Peer{ID: b.id, Addr: b.addr, Connected: true})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("replica %d Peers() (-want +got):\n%s", a.id, diff)
		}
		for _, b := range nodes {
			if b == a {
				continue
			}
			if got := testutil.ToFloat64(a.tr.metrics.sentMsgs.WithLabelValues(b.addr)); got != 2 {
				t.Errorf("replica %d sent_messages_total{peer=%s} = %v, want 2", a.id, b.addr, got)
			}
			if got := testutil.ToFloat64(b.tr.metrics.receivedMsgs.WithLabelValues(a.addr)); got != 2 {
				t.Errorf("replica %d received_messages_total{peer=%s} = %v, want 2", b.id, a.addr, got)
			}
			if got := testutil.ToFloat64(a.tr.metrics.connected.WithLabelValues(b.addr)); got != 1 {
				t.Errorf("replica %d connected{peer=%s} = %v, want 1", a.id, b.addr, got)
			}
		}
	}
}

func TestSendToUnknownReplicaDropsAndCounts(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, []paxos.ReplicaID{1, 2})
	waitConnected(t, nodes)
	a, b := nodes[0], nodes[1]
	a.tr.Send([]paxos.Message{msg(1, 99, 1), msg(1, 2, 2)})
	if got := b.recv(t, 1); got[0].Position != 2 {
		t.Errorf("received %+v, want position 2", got[0])
	}
	if got := testutil.ToFloat64(a.tr.metrics.droppedMsgs.WithLabelValues(unknownPeer, dropUnknownPeer)); got != 1 {
		t.Errorf("dropped{reason=%s} = %v, want 1", dropUnknownPeer, got)
	}
}

func TestLargeBatchesSplitIntoFrames(t *testing.T) {
	t.Parallel()
	const frame = 4 << 10
	nodes := startCluster(t, []paxos.ReplicaID{1, 2}, func(c *Config) { c.MaxFrameBytes = frame })
	waitConnected(t, nodes)
	a, b := nodes[0], nodes[1]

	var batch []paxos.Message
	for i := range 20 {
		m := msg(1, 2, paxos.Position(i))
		m.Actions[0].Entry.Data = make([]byte, 1500) // ~2 messages per frame
		batch = append(batch, m)
	}
	huge := msg(1, 2, 100)
	huge.Actions[0].Entry.Data = make([]byte, frame+1)
	a.tr.Send(append(batch, huge))

	got := b.recv(t, len(batch))
	// cmp walks byte slices element by element; compare them whole.
	if diff := cmp.Diff(batch, got, cmp.Comparer(bytes.Equal)); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	// 20 messages of ~1.55 KiB fit two to a 4 KiB frame.
	if got := testutil.ToFloat64(a.tr.metrics.sentFrames.WithLabelValues(b.addr)); got < 10 {
		t.Errorf("sent_frames_total = %v, want >= 10 (two messages per frame at most)", got)
	}
	if got := testutil.ToFloat64(a.tr.metrics.droppedMsgs.WithLabelValues(unknownPeer, dropTooLarge)); got != 1 {
		t.Errorf("dropped{reason=%s} = %v, want 1", dropTooLarge, got)
	}
}

func TestHandshakeRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dialer   opts
		listener opts
		sameID   bool
		cluster  paxos.ClusterID // the listener's; the dialer's is 1
		// who refuses, and the reason each side logs.
		dialerRefuses bool
		reason        string
	}{
		{
			name:    "another cluster",
			cluster: 2,
			reason:  "belongs to cluster 1, this replica to cluster 2",
		},
		{
			name:     "wrong secret",
			dialer:   func(c *Config) { c.Secret = []byte("correct horse") },
			listener: func(c *Config) { c.Secret = []byte("battery staple") },
			cluster:  1,
			reason:   "peer_secret does not match",
		},
		{
			name:     "secret on the listener only",
			listener: func(c *Config) { c.Secret = []byte("battery staple") },
			cluster:  1,
			reason:   "peer_secret is set on one replica only",
		},
		{
			name: "not a member",
			listener: func(c *Config) {
				c.Allow = func(paxos.ClusterID, paxos.ReplicaID, string) error { return errNotMember }
			},
			cluster: 1,
			reason:  "is refused: not in the masters list",
		},
		{
			name:    "own replica id",
			sameID:  true,
			cluster: 1,
			reason:  "has this replica's own id",
		},
		{
			name: "dialer refuses the listener",
			dialer: func(c *Config) {
				c.Allow = func(paxos.ClusterID, paxos.ReplicaID, string) error { return errNotMember }
			},
			cluster:       1,
			dialerRefuses: true,
			reason:        "is refused: not in the masters list",
		},
		{
			name: "dialer with a secret refuses the listener",
			dialer: func(c *Config) {
				c.Secret = []byte("s")
				c.Allow = func(paxos.ClusterID, paxos.ReplicaID, string) error { return errNotMember }
			},
			listener:      func(c *Config) { c.Secret = []byte("s") },
			cluster:       1,
			dialerRefuses: true,
			reason:        "is refused: not in the masters list",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lisB := listen(t)
			idB := paxos.ReplicaID(2)
			if tc.sameID {
				idB = 1
			}
			var modsA, modsB []opts
			if tc.dialer != nil {
				modsA = append(modsA, tc.dialer)
			}
			if tc.listener != nil {
				modsB = append(modsB, tc.listener)
			}
			b := startNode(t, idB, tc.cluster, lisB, nil, modsB...)
			a := startNode(t, 1, 1, listen(t), []string{b.addr}, modsA...)

			// Let the dialer retry several times: the refusal must be logged
			// once, not per attempt.
			const attempts = 4
			waitFor(t, a.tr, "repeated connection failures", func() bool {
				return testutil.ToFloat64(a.tr.metrics.connectFailures.WithLabelValues(b.addr)) >= attempts
			})
			if tc.dialerRefuses {
				waitFor(t, b.tr, "refusals reported to the listener", func() bool {
					return testutil.ToFloat64(b.tr.metrics.refusals.WithLabelValues(refusedByPeer)) >= attempts
				})
			}
			a.tr.Send([]paxos.Message{msg(1, idB, 1), msg(1, 0, 2)})
			a.close(t)
			b.close(t)

			if p := a.tr.Peers(); p[0].Connected || (!tc.dialerRefuses && p[0].ID != 0) {
				t.Errorf("dialer Peers() = %+v, want never connected", p)
			}
			if len(b.got) != 0 {
				t.Errorf("listener received %d messages, want none", len(b.got))
			}
			if tc.dialerRefuses {
				if n := a.logs.count("refused peer", tc.reason); n != 1 {
					t.Errorf("dialer logged the refusal %d times, want once; logs:\n%s", n, a.logs)
				}
				if n := testutil.ToFloat64(a.tr.metrics.refusals.WithLabelValues(refusedBySelf)); n < attempts {
					t.Errorf("dialer refusals{by=self} = %v, want >= %d", n, attempts)
				}
				if n := b.logs.count("refused by peer", tc.reason); n != 1 {
					t.Errorf("listener logged the dialer's refusal %d times, want once; logs:\n%s", n, b.logs)
				}
				return
			}
			if n := b.logs.count("refused peer", tc.reason); n != 1 {
				t.Errorf("listener logged the refusal %d times, want once; logs:\n%s", n, b.logs)
			}
			if n := a.logs.count("refused by peer", tc.reason); n != 1 {
				t.Errorf("dialer logged the peer's refusal %d times, want once; logs:\n%s", n, a.logs)
			}
			if n := testutil.ToFloat64(a.tr.metrics.refusals.WithLabelValues(refusedByPeer)); n < attempts {
				t.Errorf("dialer refusals{by=peer} = %v, want >= %d", n, attempts)
			}
			if n := testutil.ToFloat64(b.tr.metrics.refusals.WithLabelValues(refusedBySelf)); n < attempts {
				t.Errorf("listener refusals{by=self} = %v, want >= %d", n, attempts)
			}
		})
	}
}

func TestSecretAuthenticatesBothWays(t *testing.T) {
	t.Parallel()
	secret := func(c *Config) { c.Secret = []byte("correct horse battery staple") }
	nodes := startCluster(t, []paxos.ReplicaID{1, 2}, secret)
	waitConnected(t, nodes)
	nodes[0].tr.Send([]paxos.Message{msg(1, 2, 7)})
	nodes[1].tr.Send([]paxos.Message{msg(2, 1, 8)})
	if got := nodes[1].recv(t, 1); got[0].Position != 7 {
		t.Errorf("replica 2 received %+v", got[0])
	}
	if got := nodes[0].recv(t, 1); got[0].Position != 8 {
		t.Errorf("replica 1 received %+v", got[0])
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t, "regent")
	lisA, lisB := listen(t), listen(t)
	a := startNode(t, 1, 1, lisA, []string{lisB.Addr().String()}, func(c *Config) { c.TLS = pki.leaf(t, "a") })
	b := startNode(t, 2, 1, lisB, []string{lisA.Addr().String()}, func(c *Config) { c.TLS = pki.leaf(t, "b") })
	waitConnected(t, []*node{a, b})
	a.tr.Send([]paxos.Message{msg(1, 2, 1)})
	b.tr.Send([]paxos.Message{msg(2, 0, 2)})
	if got := b.recv(t, 1); got[0].Position != 1 {
		t.Errorf("b received %+v", got[0])
	}
	if got := a.recv(t, 1); got[0].Position != 2 {
		t.Errorf("a received %+v", got[0])
	}

	t.Run("certificate from another CA", func(t *testing.T) {
		rogue := newPKI(t, "rogue")
		r := startNode(t, 3, 1, listen(t), []string{b.addr}, func(c *Config) { c.TLS = rogue.leaf(t, "r") })
		waitFor(t, r.tr, "repeated connection failures", func() bool {
			return testutil.ToFloat64(r.tr.metrics.connectFailures.WithLabelValues(b.addr)) >= 3
		})
		r.tr.Send([]paxos.Message{msg(3, 0, 9), msg(3, 2, 9)})
		r.close(t)
		if p := r.tr.Peers(); p[0].ID != 0 || p[0].Connected {
			t.Errorf("rogue Peers() = %+v, want never connected", p)
		}
		if len(b.got) != 0 {
			t.Errorf("b received %d messages from the rogue, want none", len(b.got))
		}
	})
}

func TestLoadTLSErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := newPKI(t, "regent")
	empty := pki.write(t, "empty.pem", "NOTHING", nil)
	tests := []struct {
		name, ca, cert, key, want string
	}{
		{"missing ca", dir + "/nope.pem", "", "", "read ca"},
		{"ca without certificates", empty, "", "", "no certificate in ca file"},
		{"missing key pair", pki.caFile, dir + "/nope.pem", dir + "/nope-key.pem", "load peer tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadTLS(tc.ca, tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadTLS(%q, %q, %q) error = %v, want containing %q", tc.ca, tc.cert, tc.key, err, tc.want)
			}
		})
	}
}

func TestPeerRestart(t *testing.T) {
	t.Parallel()
	const queue = 4
	lisB := listen(t)
	addrB := lisB.Addr().String()
	b := startNode(t, 2, 1, lisB, nil)
	a := startNode(t, 1, 1, listen(t), []string{addrB}, func(c *Config) { c.QueueSize = queue })
	waitFor(t, a.tr, "connection", func() bool { return connectedTo(a.tr, 2) })
	a.tr.Send([]paxos.Message{msg(1, 2, 1)})
	b.recv(t, 1)

	b.close(t)
	waitFor(t, a.tr, "disconnection", func() bool { return !connectedTo(a.tr, 2) })
	if got := testutil.ToFloat64(a.tr.metrics.connected.WithLabelValues(addrB)); got != 0 {
		t.Errorf("connected{peer=b} = %v after b stopped, want 0", got)
	}

	// While b is down, messages to its ReplicaID queue up to QueueSize; the
	// rest are dropped and counted. Broadcasts skip a disconnected peer.
	var sent []paxos.Message
	for i := range 10 {
		sent = append(sent, msg(1, 2, paxos.Position(10+i)))
	}
	a.tr.Send(sent)
	a.tr.Send([]paxos.Message{msg(1, 0, 99)})
	if got := testutil.ToFloat64(a.tr.metrics.droppedMsgs.WithLabelValues(addrB, dropQueueFull)); got != 10-queue {
		t.Errorf("dropped{reason=%s} = %v, want %d", dropQueueFull, got, 10-queue)
	}

	lisB2, err := net.Listen("tcp", addrB)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addrB, err)
	}
	b2 := startNode(t, 2, 1, lisB2, nil)
	waitFor(t, a.tr, "reconnection", func() bool { return connectedTo(a.tr, 2) })
	if diff := cmp.Diff(sent[:queue], b2.recv(t, queue)); diff != "" {
		t.Errorf("after restart received (-want +got):\n%s", diff)
	}
	// Only now is there room in the queue again.
	a.tr.Send([]paxos.Message{msg(1, 2, 50)})
	if diff := cmp.Diff([]paxos.Message{msg(1, 2, 50)}, b2.recv(t, 1)); diff != "" {
		t.Errorf("after restart received (-want +got):\n%s", diff)
	}
	if n := a.logs.count("connected to peer"); n != 2 {
		t.Errorf("logged %d connections, want 2; logs:\n%s", n, a.logs)
	}
}

// TestListenerChecksFrames drives the listener with a raw gRPC client.
func TestListenerChecksFrames(t *testing.T) {
	t.Parallel()
	b := startNode(t, 2, 1, listen(t), nil)
	cc, err := grpc.NewClient("passthrough:///"+b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := peerpb.NewPeerClient(cc)
	hello := func(version uint32) *peerpb.Hello {
		return &peerpb.Hello{Version: version, Cluster: 1, Replica: 7, Addr: "raw", Nonce: make([]byte, nonceBytes)}
	}

	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name  string
			first *peerpb.Frame
			code  codes.Code
		}{
			{"no hello", &peerpb.Frame{Msgs: [][]byte{replog.EncodeMessage(msg(7, 2, 1))}}, codes.InvalidArgument},
			{"unknown version", &peerpb.Frame{Hello: hello(2)}, codes.FailedPrecondition},
			{"short nonce", &peerpb.Frame{Hello: &peerpb.Hello{Version: 1, Replica: 7, Nonce: []byte{1}}}, codes.PermissionDenied},
			{"replica zero", &peerpb.Frame{Hello: &peerpb.Hello{Version: 1, Nonce: make([]byte, nonceBytes)}}, codes.PermissionDenied},
		}
		for _, tc := range tests {
			stream, err := client.Stream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(tc.first); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != tc.code {
				t.Errorf("%s: Recv error = %v, want code %v", tc.name, err, tc.code)
			}
		}
	})

	t.Run("messages", func(t *testing.T) {
		stream, err := client.Stream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&peerpb.Frame{Hello: hello(1)}); err != nil {
			t.Fatal(err)
		}
		w, err := stream.Recv()
		if err != nil {
			t.Fatalf("welcome: %v", err)
		}
		if w.GetHello().GetReplica() != 2 || w.GetHello().GetAddr() != b.addr {
			t.Errorf("welcome = %v, want replica 2 at %s", w, b.addr)
		}
		noFrom := msg(0, 2, 3)
		if err := stream.Send(&peerpb.Frame{Msgs: [][]byte{
			replog.EncodeMessage(msg(7, 2, 1)),
			replog.EncodeMessage(msg(8, 2, 2)), // From is not the handshake's replica
			{0xff, 0x00},                       // not a message
			replog.EncodeMessage(noFrom),       // From filled in
		}}); err != nil {
			t.Fatal(err)
		}
		got := b.recv(t, 2)
		noFrom.From = 7
		if diff := cmp.Diff([]paxos.Message{msg(7, 2, 1), noFrom}, got); diff != "" {
			t.Errorf("received (-want +got):\n%s", diff)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err == nil {
			t.Errorf("stream still open after CloseSend")
		}
		for _, reason := range []string{dropWrongSender, dropUndecodable} {
			if got := testutil.ToFloat64(b.tr.metrics.droppedMsgs.WithLabelValues("raw", reason)); got != 1 {
				t.Errorf("dropped{reason=%s} = %v, want 1", reason, got)
			}
		}
	})
}

func TestCheckHello(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	mk := func(mod func(h *peerpb.Hello)) *peerpb.Hello {
		h := &peerpb.Hello{Version: ProtocolVersion, Cluster: 5, Replica: 9, Addr: "10.0.0.9:5051", Nonce: make([]byte, nonceBytes)}
		if mod != nil {
			mod(h)
		}
		return h
	}
	signed := func(mod func(h *peerpb.Hello)) *peerpb.Hello {
		h := mk(mod)
		h.Mac = helloMAC(secret, labelHello, h, nil)
		return h
	}
	tests := []struct {
		name    string
		secret  []byte
		cluster paxos.ClusterID
		hello   *peerpb.Hello
		label   string
		want    codes.Code // OK = accepted
		reason  string
	}{
		{name: "accepted", hello: mk(nil), cluster: 5},
		{name: "accepted before initialisation", hello: mk(func(h *peerpb.Hello) { h.Cluster = 0 }), cluster: 5},
		{name: "accepted by an uninitialised replica", hello: mk(nil), cluster: 0},
		{name: "signed", secret: secret, hello: signed(nil), cluster: 5},
		{name: "nil", hello: nil, want: codes.InvalidArgument},
		{name: "version", hello: mk(func(h *peerpb.Hello) { h.Version = 9 }), want: codes.FailedPrecondition, reason: "version 9"},
		{name: "long address", hello: mk(func(h *peerpb.Hello) { h.Addr = strings.Repeat("a", maxAddrBytes+1) }), want: codes.PermissionDenied, reason: "address has 1025 bytes"},
		{name: "cluster", hello: mk(nil), cluster: 6, want: codes.PermissionDenied, reason: "cluster 5"},
		{name: "self", hello: mk(func(h *peerpb.Hello) { h.Replica = 1 }), want: codes.PermissionDenied, reason: "own id"},
		{name: "unsigned", secret: secret, hello: mk(nil), want: codes.PermissionDenied, reason: "not authenticated"},
		{name: "signed, no secret here", hello: signed(nil), want: codes.PermissionDenied, reason: "this replica has no secret"},
		{name: "mac under another label", secret: secret, hello: signed(nil), label: labelWelcome, want: codes.PermissionDenied, reason: "does not match"},
		{name: "tampered address", secret: secret, hello: func() *peerpb.Hello { h := signed(nil); h.Addr = "10.0.0.66:5051"; return h }(), want: codes.PermissionDenied, reason: "does not match"},
		{name: "tampered cluster", secret: secret, hello: func() *peerpb.Hello { h := signed(nil); h.Cluster = 6; return h }(), cluster: 6, want: codes.PermissionDenied, reason: "does not match"},
		{name: "wrong secret", secret: []byte("other"), hello: signed(nil), want: codes.PermissionDenied, reason: "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := &Transport{cfg: Config{
				Secret: tc.secret,
				Self:   func() (paxos.ClusterID, paxos.ReplicaID) { return tc.cluster, 1 },
			}}
			label := tc.label
			if label == "" {
				label = labelHello
			}
			ref := tr.check(tc.hello, label, nil)
			var code codes.Code
			var reason string
			if ref != nil {
				code, reason = ref.code, ref.reason
			}
			if code != tc.want || !strings.Contains(reason, tc.reason) {
				t.Errorf("check(%v) = %v %q, want %v containing %q", tc.hello, code, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestAllowSeesPeerIdentity(t *testing.T) {
	t.Parallel()
	type call struct {
		Cluster paxos.ClusterID
		ID      paxos.ReplicaID
		Addr    string
	}
	calls := make(chan call, 16)
	lisB := listen(t)
	b := startNode(t, 2, 0, lisB, nil, func(c *Config) {
		c.Allow = func(cl paxos.ClusterID, id paxos.ReplicaID, addr string) error {
			calls <- call{cl, id, addr}
			return nil
		}
	})
	a := startNode(t, 1, 4, listen(t), []string{b.addr})
	waitFor(t, a.tr, "connection", func() bool { return connectedTo(a.tr, 2) })
	got := <-calls
	if diff := cmp.Diff(call{4, 1, a.addr}, got); diff != "" {
		t.Errorf("Allow called with (-want +got):\n%s", diff)
	}
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	before := runtime.NumGoroutine()
	func() {
		lis := []net.Listener{listen(t), listen(t), listen(t)}
		var nodes []*node
		for i, l := range lis {
			var peers []string
			for j, o := range lis {
				if j != i {
					peers = append(peers, o.Addr().String())
				}
			}
			n := startNode(t, paxos.ReplicaID(i+1), 1, l, peers, func(c *Config) {
				c.Secret = []byte("x")
				c.Registerer = nil
			})
			nodes = append(nodes, n)
		}
		waitConnected(t, nodes)
		for _, n := range nodes {
			n.tr.Send([]paxos.Message{msg(n.id, 0, 1)})
		}
		for _, n := range nodes {
			n.recv(t, 2)
		}
		for _, n := range nodes {
			n.close(t)
		}
		if err := nodes[0].tr.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		nodes[0].tr.Send([]paxos.Message{msg(1, 0, 2), msg(1, 2, 2)})
	}()

	// gRPC's connection goroutines notice closed sockets asynchronously:
	// poll, with a deadline.
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeAfterClose(t *testing.T) {
	t.Parallel()
	tr, err := New(Config{
		Self:    func() (paxos.ClusterID, paxos.ReplicaID) { return 0, 1 },
		Handler: func(paxos.Message) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Serve(listen(t)); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	self := func() (paxos.ClusterID, paxos.ReplicaID) { return 0, 1 }
	handler := func(paxos.Message) {}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none = valid
	}{
		{"minimal", Config{Self: self, Handler: handler}, nil},
		{"missing", Config{}, []string{"self is required", "handler is required"}},
		{"peers", Config{Self: self, Handler: handler, Peers: []string{"a:1", "", "a:1"}}, []string{"empty peer address", `"a:1" listed twice`}},
		{"negative", Config{Self: self, Handler: handler, QueueSize: -1, BackoffMax: -1}, []string{"queue_size is negative", "backoff_max is negative"}},
		{"backoff", Config{Self: self, Handler: handler, BackoffInitial: time.Second, BackoffMax: time.Millisecond}, []string{"below backoff_initial"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if (err == nil) != (len(tc.want) == 0) {
				t.Fatalf("Validate() = %v, want errors %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want containing %q", err, w)
				}
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	const initial, maxWait = 10 * time.Millisecond, 100 * time.Millisecond
	for n, want := range []time.Duration{10, 20, 40, 80, 100, 100} {
		want *= time.Millisecond
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			for range 200 {
				if d := backoffDelay(initial, maxWait, n); d < want/2 || d >= want {
					t.Fatalf("backoffDelay(%v, %v, %d) = %v, want in [%v, %v)", initial, maxWait, n, d, want/2, want)
				}
			}
		})
	}
	if d := backoffDelay(initial, maxWait, 1000); d < maxWait/2 || d >= maxWait {
		t.Errorf("backoffDelay after many attempts = %v, want in [%v, %v)", d, maxWait/2, maxWait)
	}
}

func TestMetricsRegistration(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Self:       func() (paxos.ClusterID, paxos.ReplicaID) { return 0, 2 },
		Handler:    func(paxos.Message) {},
		Registerer: reg,
	}
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := New(cfg); !errors.As(err, &are) {
		t.Errorf("second New on one registry: error = %v, want an AlreadyRegisteredError", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregisters, so a restarted transport registers again.
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListenerTimesOutSilentDialer(t *testing.T) {
	t.Parallel()
	b := startNode(t, 2, 1, listen(t), nil, func(c *Config) { c.HandshakeTimeout = 500 * time.Millisecond })
	cc, err := grpc.NewClient("passthrough:///"+b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := peerpb.NewPeerClient(cc).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Recv on a silent stream = %v, want code %v", err, codes.DeadlineExceeded)
	}
}

func TestTwoAddressesOneReplica(t *testing.T) {
	t.Parallel()
	lis1, lis2 := listen(t), listen(t)
	b := startNode(t, 2, 1, lis1, nil)
	served2 := make(chan error, 1)
	go func() { served2 <- b.tr.Serve(lis2) }()
	a := startNode(t, 1, 1, listen(t), []string{lis1.Addr().String(), lis2.Addr().String()})
	waitFor(t, a.tr, "both connections", func() bool {
		p := a.tr.Peers()
		return p[0].Connected && p[1].Connected
	})
	if n := a.logs.count("two peer addresses announce one replica id"); n < 1 {
		t.Errorf("no warning about two addresses for replica 2; logs:\n%s", a.logs)
	}
	// Messages for the ReplicaID go to one of them, not both.
	a.tr.Send([]paxos.Message{msg(1, 2, 1), msg(1, 2, 2)})
	if got := b.recv(t, 2); got[0].Position != 1 || got[1].Position != 2 {
		t.Errorf("received %v, want positions 1 and 2 in order on one stream", got)
	}
	b.close(t)
	if err := <-served2; err != nil {
		t.Errorf("second Serve: %v", err)
	}
	if len(b.got) != 0 {
		t.Errorf("replica 2 received %d extra messages", len(b.got))
	}
}

// TestReplayedHelloNeedsProof replays a validly signed hello, as an attacker
// who recorded one could: without the secret it cannot prove the fresh
// listener nonce, and the stream is refused before any message is taken.
func TestReplayedHelloNeedsProof(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	b := startNode(t, 2, 1, listen(t), nil, func(c *Config) { c.Secret = secret })
	cc, err := grpc.NewClient("passthrough:///"+b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	recorded := &peerpb.Hello{Version: 1, Cluster: 1, Replica: 7, Addr: "replayer", Nonce: make([]byte, nonceBytes)}
	recorded.Mac = helloMAC(secret, labelHello, recorded, nil)

	stream, err := peerpb.NewPeerClient(cc).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&peerpb.Frame{Hello: recorded}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("welcome: %v", err)
	}
	// A proof for another listener nonce (the recorded session's).
	stale := proofMAC(secret, recorded.GetNonce(), make([]byte, nonceBytes))
	if err := stream.Send(&peerpb.Frame{Proof: stale, Msgs: [][]byte{replog.EncodeMessage(msg(7, 2, 1))}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "proof") {
		t.Errorf("Recv after a stale proof = %v, want PermissionDenied about the proof", err)
	}
	b.close(t)
	if len(b.got) != 0 {
		t.Errorf("listener took %d messages from a replayed hello", len(b.got))
	}
}

// A peer that dials us is back: the outgoing connection to it must not sit
// out a long back-off. Found end to end: a master restarted and did not hear
// the coordinator's heartbeats for up to BackoffMax, so it campaigned
// against a live leader.
func TestRedialWhenPeerDialsUs(t *testing.T) {
	t.Parallel()
	lisB := listen(t)
	addrB := lisB.Addr().String()
	lisB.Close() // b is down: a's first attempt fails
	lisA := listen(t)
	slow := func(c *Config) { c.BackoffInitial, c.BackoffMax = time.Hour, time.Hour }
	a := startNode(t, 1, 1, lisA, []string{addrB}, slow)
	waitFor(t, a.tr, "a failed attempt", func() bool {
		return testutil.ToFloat64(a.tr.metrics.connectFailures.WithLabelValues(addrB)) >= 1
	})
	lisB2, err := net.Listen("tcp", addrB)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addrB, err)
	}
	startNode(t, 2, 1, lisB2, []string{lisA.Addr().String()})
	// Without the redial, a would wait at least half an hour.
	waitFor(t, a.tr, "a's connection to b after b dialed a", func() bool { return connectedTo(a.tr, 2) })
}
