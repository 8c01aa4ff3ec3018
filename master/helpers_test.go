package master

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testMaster is a master running (under synctest) over a fakeCluster.
type testMaster struct {
	*Master
	log    *fakeLog
	cancel context.CancelFunc
	done   chan struct{}
	err    error

	mu     sync.Mutex
	status string // last heartbeat
	ready  int
}

// startMaster starts a master named by port on c. Hostname is
// "m<port>.test" unless mod changes it.
func startMaster(t *testing.T, c *fakeCluster, port int, mod func(*Config)) *testMaster {
	t.Helper()
	tm := &testMaster{log: c.node(), done: make(chan struct{})}
	cfg := Config{
		ID:       fmt.Sprintf("master-%d", port),
		Cluster:  "test",
		Hostname: fmt.Sprintf("m%d.test", port),
		IP:       "127.0.0.1",
		Port:     port,
		Listener: newChanListener(port),
		Quorum:   2,
		Version:  "0.1.0",
		Lease:    2 * time.Second,
		Flags:    map[string]string{"quorum": "2", "work_dir": "/var/lib/regent"},
		Logger:   hclog.New(&hclog.LoggerOptions{Output: tWriter{t}, Level: hclog.Debug, Name: fmt.Sprintf("m%d", port)}),
		Ready: func() {
			tm.mu.Lock()
			tm.ready++
			tm.mu.Unlock()
		},
		Heartbeat: func(s string) {
			tm.mu.Lock()
			tm.status = s
			tm.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg, tm.log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tm.Master = m
	ctx, cancel := context.WithCancel(context.Background())
	tm.cancel = cancel
	go func() {
		defer close(tm.done)
		tm.err = m.Run(ctx)
	}()
	t.Cleanup(func() { _ = tm.stop() }) // tests that care call stop themselves
	return tm
}

// stop cancels the master and returns Run's result.
func (tm *testMaster) stop() error {
	tm.cancel()
	<-tm.done
	return tm.err
}

// exited reports whether Run returned, and its error.
func (tm *testMaster) exited() (bool, error) {
	select {
	case <-tm.done:
		return true, tm.err
	default:
		return false, nil
	}
}

func (tm *testMaster) heartbeat() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.status
}

// do serves one request through the master's handler.
func (tm *testMaster) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	tm.Handler().ServeHTTP(rec, req)
	return rec
}

// api posts a JSON v1 call.
func (tm *testMaster) api(body string) *httptest.ResponseRecorder {
	return tm.do("POST", "/api/v1", body, "Content-Type", "application/json")
}

// settle lets fake time pass so masters elect and recover.
func settle() {
	time.Sleep(time.Second)
}

func decodeJSON[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return v
}

// tWriter sends log output to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
