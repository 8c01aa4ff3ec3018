package master

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLeaderElectsAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, nil)
		settle()
		if got := m.heartbeat(); got != "leading" {
			t.Fatalf("heartbeat = %q, want leading", got)
		}
		if m.ready != 1 {
			t.Errorf("Ready called %d times, want 1", m.ready)
		}
		var info *MasterInfo
		m.reg.view(func(r *Registry) { info = r.Master.Info })
		if info == nil || info.ID != "master-5050" || info.Hostname != "m5050.test" || info.Port != 5050 || info.ElectedTime == 0 {
			t.Fatalf("registry master info = %+v", info)
		}
		snap := decodeJSON[map[string]float64](t, m.do("GET", "/metrics/snapshot", ""))
		for _, k := range []string{"master/elected", "registrar/log/recovered"} {
			if snap[k] != 1 {
				t.Errorf("%s = %v, want 1", k, snap[k])
			}
		}
		if snap["registrar/log/ensemble_size"] != 3 {
			t.Errorf("ensemble_size = %v, want 3", snap["registrar/log/ensemble_size"])
		}
		if _, ok := snap["registrar/state_store_ms/p99"]; !ok {
			t.Errorf("no registrar/state_store_ms/p99 in %v", snap)
		}
		if err := m.stop(); err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	})
}

func TestMaintenanceWalkthrough(t *testing.T) {
	// The Mesos maintenance docs' curl session, bodies as printed there.
	synctest.Test(t, func(t *testing.T) {
		m := startMaster(t, newFakeCluster(), 5050, nil)
		settle()
		schedule := `{
  "windows" : [
    {
      "machine_ids" : [
        { "hostname" : "machine1", "ip" : "10.0.1.1" },
        { "hostname" : "machine2", "ip" : "10.0.1.2" }
      ],
      "unavailability" : {
        "start" : { "nanoseconds" : 1443830400000000000 },
        "duration" : { "nanoseconds" : 3600000000000 }
      }
    }, {
      "machine_ids" : [
        { "hostname" : "machine3", "ip" : "10.0.1.3" }
      ],
      "unavailability" : {
        "start" : { "nanoseconds" : 1443834000000000000 },
        "duration" : { "nanoseconds" : 3600000000000 }
      }
    }
  ]
}`
		machines := `[
  { "hostname" : "machine1", "ip" : "10.0.1.1" },
  { "hostname" : "machine2", "ip" : "10.0.1.2" }
]`
		steps := []struct {
			method, path, body string
			hdr                []string
			code               int
			want               string // exact body, if set
		}{
			{"POST", "/maintenance/schedule", schedule, []string{"Content-Type", "application/json"}, 200, ""},
			{"GET", "/maintenance/status", "", nil, 200, `{"draining_machines":[{"id":{"hostname":"machine1","ip":"10.0.1.1"}},{"id":{"hostname":"machine2","ip":"10.0.1.2"}},{"id":{"hostname":"machine3","ip":"10.0.1.3"}}]}`},
			{"POST", "/machine/down", machines, nil, 200, ""},
			{"GET", "/maintenance/status", "", nil, 200, `{"draining_machines":[{"id":{"hostname":"machine3","ip":"10.0.1.3"}}],"down_machines":[{"hostname":"machine1","ip":"10.0.1.1"},{"hostname":"machine2","ip":"10.0.1.2"}]}`},
			{"POST", "/machine/down", machines, nil, 400, "Machine '{\"hostname\":\"machine1\",\"ip\":\"10.0.1.1\"}' is not in DRAINING mode and cannot be brought down\n"},
			{"POST", "/maintenance/schedule", `{"windows":[]}`, nil, 400, "Machine '{\"hostname\":\"machine1\",\"ip\":\"10.0.1.1\"}' is deactivated and cannot be removed from the schedule\n"},
			{"POST", "/machine/up", machines, nil, 200, ""},
			{"GET", "/maintenance/status", "", nil, 200, `{"draining_machines":[{"id":{"hostname":"machine3","ip":"10.0.1.3"}}]}`},
			{"GET", "/master/maintenance/schedule", "", nil, 200, `{"windows":[{"machine_ids":[{"hostname":"machine3","ip":"10.0.1.3"}],"unavailability":{"start":{"nanoseconds":1443834000000000000},"duration":{"nanoseconds":3600000000000}}}]}`},
			{"POST", "/machine/up", `[{"hostname":"machine3","ip":"10.0.1.3"}]`, nil, 400, "Machine '{\"hostname\":\"machine3\",\"ip\":\"10.0.1.3\"}' is not in DOWN mode and cannot be brought up\n"},
			{"POST", "/machine/down", `[{"hostname":"machine9"}]`, nil, 400, "Machine '{\"hostname\":\"machine9\"}' is not part of a maintenance schedule\n"},
			{"POST", "/maintenance/schedule", `{}`, nil, 200, ""},
			{"GET", "/maintenance/status", "", nil, 200, `{}`},
			{"GET", "/maintenance/schedule", "", nil, 200, `{}`},
		}
		for i, s := range steps {
			rec := m.do(s.method, s.path, s.body, s.hdr...)
			if rec.Code != s.code {
				t.Fatalf("step %d %s %s: code %d (%q), want %d", i, s.method, s.path, rec.Code, rec.Body.String(), s.code)
			}
			if s.want != "" {
				if diff := cmp.Diff(s.want, rec.Body.String()); diff != "" {
					t.Fatalf("step %d %s %s: body (-want +got):\n%s", i, s.method, s.path, diff)
				}
			}
		}
	})
}

func TestFollowerRedirects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		leader := startMaster(t, c, 5050, func(cfg *Config) {
			cfg.AdvertiseIP = "203.0.113.7"
			cfg.AdvertisePort = 15050
			cfg.Hostname = ""
		})
		settle()
		follower := startMaster(t, c, 5051, nil)
		settle()
		if got := follower.heartbeat(); got != "following leader 203.0.113.7:15050" {
			t.Errorf("follower heartbeat = %q", got)
		}
		follower.log.mu.Lock()
		elects := follower.log.elects
		follower.log.mu.Unlock()
		if elects != 0 {
			t.Errorf("follower campaigned %d times during a live lease", elects)
		}
		tests := []struct {
			method, path string
			code         int
			location     string
		}{
			{"GET", "/state", 307, "//203.0.113.7:15050/master/state"},
			{"GET", "/master/state?jsonp=cb&x=1", 307, "//203.0.113.7:15050/master/state?jsonp=cb&x=1"},
			{"GET", "/maintenance/status", 307, "//203.0.113.7:15050/master/maintenance/status"},
			{"DELETE", "/quota/dev/team", 307, "//203.0.113.7:15050/master/quota/dev/team"},
			{"POST", "/api/v1", 307, "//203.0.113.7:15050/master/api/v1"},
			{"GET", "/redirect", 307, "//203.0.113.7:15050"},
			{"GET", "/master/redirect", 307, "//203.0.113.7:15050"},
			{"GET", "/redirect/anything", 404, ""},
			{"GET", "/master/redirect/x", 404, ""},
			{"GET", "/health", 200, ""},
			{"GET", "/flags", 200, ""},
			{"GET", "/version", 200, ""},
			{"GET", "/registrar(1)/registry", 200, ""},
			{"GET", "/metrics/snapshot", 200, ""},
		}
		for _, tt := range tests {
			rec := follower.do(tt.method, tt.path, "")
			if rec.Code != tt.code || rec.Header().Get("Location") != tt.location {
				t.Errorf("%s %s = %d Location %q, want %d %q", tt.method, tt.path, rec.Code, rec.Header().Get("Location"), tt.code, tt.location)
			}
		}
		// The leader's own /redirect points at itself; its MasterInfo and
		// /state carry the advertised address.
		if rec := leader.do("GET", "/redirect", ""); rec.Code != 307 || rec.Header().Get("Location") != "//203.0.113.7:15050" {
			t.Errorf("leader /redirect = %d %q", rec.Code, rec.Header().Get("Location"))
		}
		st := decodeJSON[map[string]any](t, leader.do("GET", "/master/state", ""))
		if st["pid"] != "master@203.0.113.7:15050" || st["hostname"] != "203.0.113.7" {
			t.Errorf("state pid %v hostname %v", st["pid"], st["hostname"])
		}
		// The follower's registry dump names the leader.
		reg := decodeJSON[Registry](t, follower.do("GET", "/registrar(1)/registry", ""))
		if reg.Master.Info == nil || reg.Master.Info.Address.IP != "203.0.113.7" || reg.Master.Info.Port != 15050 {
			t.Errorf("follower registry master = %+v", reg.Master.Info)
		}
	})
}

func TestRedirectWithoutAdvertise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		startMaster(t, c, 5050, nil)
		settle()
		f := startMaster(t, c, 5051, nil)
		settle()
		rec := f.do("GET", "/state-summary?a=b", "")
		if rec.Code != 307 || rec.Header().Get("Location") != "//m5050.test:5050/master/state-summary?a=b" {
			t.Errorf("= %d %q", rec.Code, rec.Header().Get("Location"))
		}
	})
}

func TestNoLeader503(t *testing.T) {
	tests := []struct {
		name      string
		reachable int
		want      string
	}{
		{"no leader", 3, "no leader elected"},
		{"no quorum", 1, "waiting for quorum: 1 of 2 replicas reachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newFakeCluster()
				c.setReachable(tt.reachable)
				m := startMaster(t, c, 5050, nil)
				m.log.setElectErr(ErrNotElected)
				settle()
				for _, p := range []string{"/state", "/master/quota", "/redirect", "/master/redirect"} {
					rec := m.do("GET", p, "")
					if rec.Code != 503 {
						t.Fatalf("GET %s = %d, want 503", p, rec.Code)
					}
					if rec.Header().Get("Retry-After") == "" {
						t.Errorf("GET %s: no Retry-After", p)
					}
					body := decodeJSON[map[string]string](t, rec)
					if body["error"] != tt.want {
						t.Errorf("GET %s: error %q, want %q", p, body["error"], tt.want)
					}
				}
				if got := m.heartbeat(); got != tt.want {
					t.Errorf("heartbeat %q, want %q", got, tt.want)
				}
				if rec := m.do("GET", "/health", ""); rec.Code != 200 {
					t.Errorf("/health = %d", rec.Code)
				}
			})
		})
	}
}

func TestAPIBeforeRecovery503(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, nil)
		release := m.log.holdReads()
		settle()
		if !m.isLeading() {
			t.Fatal("not leading")
		}
		if got := m.heartbeat(); got != "leading; recovering the registry" {
			t.Errorf("heartbeat = %q", got)
		}
		rec := m.api(`{"type":"GET_HEALTH"}`)
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "Master has not finished recovery") {
			t.Fatalf("= %d %q", rec.Code, rec.Body.String())
		}
		release()
		settle()
		if rec := m.api(`{"type":"GET_HEALTH"}`); rec.Code != 200 || rec.Body.String() != `{"get_health":{"healthy":true},"type":"GET_HEALTH"}` {
			t.Fatalf("after recovery = %d %q", rec.Code, rec.Body.String())
		}
	})
}

func TestLeaseGatedReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.LeaseMargin = 100 * time.Millisecond })
		settle()
		if rec := m.do("GET", "/state", ""); rec.Code != 200 {
			t.Fatalf("with lease: %d", rec.Code)
		}
		c.setLease(50 * time.Millisecond) // below the drift margin, not yet expired
		rec := m.do("GET", "/state", "")
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "lease") {
			t.Fatalf("lease below margin: %d %q", rec.Code, rec.Body.String())
		}
		if done, _ := m.exited(); done {
			t.Fatal("exited while the lease was still valid")
		}
	})
}

// TestLeaseLapseWithinGrace checks that a leader whose lease lapses for
// less than LeaseGrace (a stalled disk) stops serving leader-only reads but
// does not exit, and serves again once the lease is renewed.
func TestLeaseLapseWithinGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.LeaseGrace = time.Second })
		settle()
		c.setLease(0)
		time.Sleep(900 * time.Millisecond)
		if done, err := m.exited(); done {
			t.Fatalf("exited %v after a lapse of 0.9s, within a grace of 1s", err)
		}
		if rec := m.do("GET", "/state", ""); rec.Code != 503 {
			t.Errorf("GET /state with the lease lapsed = %d %q, want 503", rec.Code, rec.Body.String())
		}
		c.setLease(2 * time.Second)
		time.Sleep(200 * time.Millisecond)
		if rec := m.do("GET", "/state", ""); rec.Code != 200 {
			t.Errorf("GET /state after the renewal = %d %q, want 200", rec.Code, rec.Body.String())
		}
		// The grace starts again with the next lapse: 0.9s more is fine.
		c.setLease(0)
		time.Sleep(900 * time.Millisecond)
		c.setLease(2 * time.Second)
		time.Sleep(200 * time.Millisecond)
		if done, err := m.exited(); done {
			t.Fatalf("exited %v after two lapses of 0.9s, each within the grace", err)
		}
		snap := decodeJSON[map[string]float64](t, m.do("GET", "/metrics/snapshot", ""))
		if got := snap["master/lease_lapses"]; got != 2 {
			t.Errorf("master/lease_lapses = %v, want 2", got)
		}
		if rec := m.do("PUT", "/weights", `[{"role":"dev","weight":2}]`); rec.Code != 200 {
			t.Errorf("PUT /weights after the lapses = %d %q, want 200", rec.Code, rec.Body.String())
		}
	})
}

func TestFailFast(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		before func(c *fakeCluster, m *testMaster) // before election
		after  func(c *fakeCluster, m *testMaster) // once leading
		wait   time.Duration
		code   int
		is     error
		reason string
	}{
		{
			name:   "lost leadership",
			after:  func(c *fakeCluster, _ *testMaster) { c.depose() },
			code:   ExitTransient,
			is:     ErrLostLeadership,
			reason: "Conceded leadership to another master... committing suicide!",
		},
		{
			name:   "lease lost",
			after:  func(c *fakeCluster, _ *testMaster) { c.setLease(0) },
			wait:   2 * time.Second, // LeaseGrace (1s) first
			code:   ExitTransient,
			is:     ErrLeaseExpired,
			reason: "Leading master cut off from the quorum: lease expired... committing suicide!",
		},
		{
			name: "append lost leadership",
			after: func(_ *fakeCluster, m *testMaster) {
				m.log.mu.Lock()
				m.log.appendErr = fmt.Errorf("append: %w", ErrLostLeadership)
				m.log.mu.Unlock()
				go m.do("PUT", "/weights", `[{"role":"dev","weight":2}]`)
			},
			code:   ExitTransient,
			is:     ErrLostLeadership,
			reason: reasonLostLeadership,
		},
		{
			name:   "lease lost while recovering",
			before: func(_ *fakeCluster, m *testMaster) { m.log.holdReads() },
			after:  func(c *fakeCluster, _ *testMaster) { c.setLease(0) },
			wait:   2 * time.Second, // LeaseGrace (1s) first
			code:   ExitTransient,
			is:     ErrLeaseExpired,
			reason: reasonLeaseExpired,
		},
		{
			name: "store timeout",
			mod:  func(cfg *Config) { cfg.RegistryStoreTimeout = 5 * time.Second },
			after: func(_ *fakeCluster, m *testMaster) {
				m.log.holdAppends()
				go m.do("PUT", "/weights", `[{"role":"dev","weight":2}]`)
			},
			wait:   10 * time.Second,
			code:   ExitTransient,
			is:     ErrStoreTimeout,
			reason: "Registrar aborted: failed to update the registry: failed to perform store within 5s (registry_store_timeout)",
		},
		{
			name:   "fetch timeout",
			mod:    func(cfg *Config) { cfg.RegistryFetchTimeout = 30 * time.Second },
			before: func(_ *fakeCluster, m *testMaster) { m.log.holdReads() },
			wait:   time.Minute,
			code:   ExitTransient,
			is:     ErrFetchTimeout,
			reason: "Recovery failed: failed to recover registrar: failed to perform fetch within 30s (registry_fetch_timeout)",
		},
		{
			name:   "corrupt entry",
			before: func(c *fakeCluster, _ *testMaster) { c.appendRaw(EntryAppend, []byte(`{"v":99}`)) },
			code:   ExitConfig,
			is:     ErrCorrupt,
			reason: reasonCorrupt,
		},
		{
			name:   "corrupt store on election",
			before: func(_ *fakeCluster, m *testMaster) { m.log.setElectErr(ErrCorrupt) },
			code:   ExitConfig,
			is:     ErrCorrupt,
			reason: reasonCorrupt,
		},
		{
			name: "other cluster",
			before: func(c *fakeCluster, _ *testMaster) {
				b, _ := encodeBatch(&batch{Version: batchVersion, Proposer: "x", Seq: 1, Ops: []Operation{{Type: OpRecover, MasterInfo: &MasterInfo{ID: "x", Cluster: "prod"}}}})
				c.appendRaw(EntryAppend, b)
			},
			code:   ExitConfig,
			is:     ErrIdentity,
			reason: reasonIdentity,
		},
		{
			name: "missing minimum capability",
			before: func(c *fakeCluster, _ *testMaster) {
				b, _ := encodeSnapshot(&Registry{MinimumCapabilities: []MinimumCapability{{Capability: "FUTURE"}}})
				c.appendRaw(EntrySnapshot, b)
			},
			code:   ExitConfig,
			is:     ErrIdentity,
			reason: "Master is missing minimum capabilities [FUTURE] required by the registry",
		},
		{
			name:   "log closed",
			before: func(_ *fakeCluster, m *testMaster) { m.log.setElectErr(ErrClosed) },
			code:   ExitTransient,
			is:     ErrClosed,
			reason: reasonClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newFakeCluster()
				m := startMaster(t, c, 5050, tt.mod)
				if tt.before != nil {
					tt.before(c, m)
				}
				settle()
				if tt.after != nil {
					if !m.isLeading() {
						t.Fatal("not leading")
					}
					tt.after(c, m)
				}
				time.Sleep(max(tt.wait, time.Second))
				done, err := m.exited()
				if !done {
					t.Fatal("master still running")
				}
				var ee *ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("Run = %v, want *ExitError", err)
				}
				if ee.Code != tt.code || ee.Reason != tt.reason || !errors.Is(err, tt.is) {
					t.Fatalf("Run = code %d reason %q err %v; want code %d reason %q is %v", ee.Code, ee.Reason, ee.Err, tt.code, tt.reason, tt.is)
				}
			})
		})
	}
}

func TestStoreTimeoutFailsPendingRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMaster(t, newFakeCluster(), 5050, nil)
		settle()
		m.log.holdAppends()
		done := make(chan int)
		go func() { done <- m.do("PUT", "/weights", `[{"role":"dev","weight":2}]`).Code }()
		time.Sleep(25 * time.Second)
		if code := <-done; code != http.StatusServiceUnavailable {
			t.Fatalf("pending request = %d, want 503", code)
		}
	})
}

func TestFailedCampaignIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, nil)
		m.log.setElectErr(errors.New("elect: another election is running"))
		settle()
		if done, err := m.exited(); done {
			t.Fatalf("exited after a failed campaign: %v", err)
		}
		m.log.setElectErr(nil)
		settle()
		if !m.isLeading() {
			t.Fatalf("not leading after the campaign succeeded: %s", m.heartbeat())
		}
	})
}

// TestLeaderRecordsCountElections checks the metric "regent bench" counts
// leader changes with: every master counts the leader records it applies,
// one per election.
func TestLeaderRecordsCountElections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		first := startMaster(t, c, 5050, nil)
		settle()
		second := startMaster(t, c, 5051, nil)
		settle()
		records := func(m *testMaster) float64 {
			t.Helper()
			return decodeJSON[map[string]float64](t, m.do("GET", "/metrics/snapshot", ""))["registrar/leader_records_applied"]
		}
		if got1, got2 := records(first), records(second); got1 != 1 || got2 != 1 {
			t.Fatalf("after one election: leader_records_applied = %v on the leader, %v on the follower; want 1, 1", got1, got2)
		}
		if err := first.stop(); err != nil {
			t.Fatalf("stop the first leader: %v", err)
		}
		c.depose()
		settle()
		if got := second.heartbeat(); got != "leading" {
			t.Fatalf("second master's heartbeat = %q, want leading", got)
		}
		if got := records(second); got != 2 {
			t.Errorf("after a second election: leader_records_applied = %v, want 2", got)
		}
	})
}
