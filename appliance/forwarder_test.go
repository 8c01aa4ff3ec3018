package appliance

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// forwarder is a TCP proxy for the external-access procedure: it listens on
// one address (another loopback address, 127.0.0.2, standing for a public
// IP) and copies every connection to a target (the master's internal
// address), as the NAT or load balancer of the guide's "external access"
// would.
type forwarder struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startForwarder listens on listenAddr ("127.0.0.2:0" picks a port) and
// forwards to target until the test ends.
func startForwarder(t *testing.T, listenAddr, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Skipf("cannot listen on %s (a second loopback address is needed): %v", listenAddr, err)
	}
	f := &forwarder{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.serve)
	t.Cleanup(f.Close)
	return f
}

// Addr returns the forwarder's listening address.
func (f *forwarder) Addr() *net.TCPAddr { return f.ln.Addr().(*net.TCPAddr) }

func (f *forwarder) serve() {
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.wg.Go(func() { f.pipe(in) })
	}
}

// pipe copies in <-> a new connection to the target until either side ends.
func (f *forwarder) pipe(in net.Conn) {
	out, err := net.Dial("tcp", f.target)
	if err != nil {
		in.Close()
		return
	}
	if !f.track(in, out) {
		return
	}
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	wg.Go(func() { half(out, in) })
	wg.Go(func() { half(in, out) })
	wg.Wait()
	f.untrack(in, out)
}

// track records both ends, or closes them when the forwarder is closed.
func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// Close stops accepting, cuts every forwarded connection and waits for the
// copying goroutines. Idempotent.
func (f *forwarder) Close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// TestForwarderCopiesBothWays checks the forwarder itself: bytes go both
// ways, and Close cuts a live connection.
func TestForwarderCopiesBothWays(t *testing.T) {
	t.Parallel()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	f := startForwarder(t, "127.0.0.2:0", echo.Addr().String())
	if ip := f.Addr().IP.String(); ip != "127.0.0.2" {
		t.Fatalf("forwarder listens on %s, want 127.0.0.2", ip)
	}
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"hello", "through the forwarder"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("read echo of %q: %v", msg, err)
		}
		if string(buf) != msg {
			t.Errorf("echo = %q, want %q", buf, msg)
		}
	}
	f.Close()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err)) {
		t.Errorf("read after Close = %v, want EOF or a reset", err)
	}
}

// isConnReset reports whether err is a reset connection.
func isConnReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}
