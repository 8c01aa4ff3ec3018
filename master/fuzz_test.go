package master

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FuzzHandlers sends arbitrary bodies to every JSON endpoint of a recovered
// leader: bad input must never produce a 5xx.
func FuzzHandlers(f *testing.F) {
	leading := make(chan struct{})
	var once bool
	cfg := Config{
		ID: "fuzz", IP: "127.0.0.1", Listener: newChanListener(5050),
		CheckInterval: time.Millisecond, ElectionJitter: time.Millisecond, Lease: time.Second,
		SnapshotEntries: 16,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
		Heartbeat: func(s string) {
			if s == "leading" && !once {
				once = true
				close(leading)
			}
		},
	}
	m, err := New(cfg, newFakeCluster().node())
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Run = %v after cancel, want nil", err)
		}
	})
	select {
	case <-leading:
	case err := <-done:
		f.Fatalf("master exited: %v", err)
	}

	endpoints := []struct{ method, path string }{
		{"POST", "/maintenance/schedule"},
		{"POST", "/master/machine/down"},
		{"POST", "/machine/up"},
		{"POST", "/quota"},
		{"PUT", "/weights"},
		{"POST", "/api/v1"},
		{"DELETE", "/quota/x"},
	}
	seeds := []string{
		`{"windows":[{"machine_ids":[{"hostname":"a","ip":"10.0.0.1"}],"unavailability":{"start":{"nanoseconds":1}}}]}`,
		`[{"hostname":"a","ip":"10.0.0.1"}]`,
		`{"role":"r","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}`,
		`[{"role":"r","weight":1e308}]`,
		`{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"r","limits":{"cpus":{"value":1}}}]}}`,
		`{"type":"START_MAINTENANCE","start_maintenance":{"machines":[{"ip":"1.2.3.4"}]}}`,
		`{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{"schedule":{"windows":[]}}}`,
		`{"type":"GET_STATE"}`, `null`, `[]`, `{}`, `{"windows":null}`, "\x00", `[{"ip":"1.2.3"}]`,
	}
	for i := range endpoints {
		for _, s := range seeds {
			f.Add(uint8(i), s, "application/json")
		}
	}
	f.Fuzz(func(t *testing.T, ep uint8, body, ctype string) {
		e := endpoints[int(ep)%len(endpoints)]
		req := httptest.NewRequest(e.method, e.path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q (Content-Type %q) = %d %q", e.method, e.path, body, ctype, rec.Code, rec.Body.String())
		}
	})
}
