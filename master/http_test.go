package master

import (
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

// TestHTTPBadInput checks status codes and reasons for bad requests on a
// recovered leader.
func TestHTTPBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMaster(t, newFakeCluster(), 5050, func(cfg *Config) { cfg.MaxBodyBytes = 256 })
		settle()
		json := []string{"Content-Type", "application/json"}
		tests := []struct {
			name         string
			method, path string
			body         string
			hdr          []string
			code         int
			allow        string
			bodyHas      string
		}{
			{"wrong method state", "POST", "/master/state", "", nil, 405, "GET, HEAD", ""},
			{"wrong method schedule", "PUT", "/maintenance/schedule", "{}", nil, 405, "GET, HEAD, POST", ""},
			{"wrong method api", "GET", "/api/v1", "", nil, 405, "POST", ""},
			{"wrong method weights", "POST", "/weights", "[]", nil, 405, "GET, HEAD, PUT", ""},
			{"wrong method machine down", "GET", "/machine/down", "", nil, 405, "POST", ""},
			{"body too large", "POST", "/maintenance/schedule", `{"windows":[` + strings.Repeat(" ", 300) + `]}`, nil, 413, "", "larger than 256 bytes"},
			{"unknown field", "POST", "/maintenance/schedule", `{"windowz":[]}`, nil, 400, "", `unknown field "windowz"`},
			{"nested unknown field", "POST", "/maintenance/schedule", `{"windows":[{"machine_ids":[{"host":"a"}]}]}`, nil, 400, "", `unknown field "host"`},
			{"wrong type", "PUT", "/weights", `[{"role":"a","weight":"x"}]`, nil, 400, "", `field "weight"`},
			{"malformed", "POST", "/machine/down", `[{`, nil, 400, "", "Failed to parse the request body"},
			{"trailing data", "POST", "/machine/down", `[] []`, nil, 400, "", "unexpected data after the JSON value"},
			{"empty body", "POST", "/machine/up", ``, nil, 400, "", "empty body"},
			{"empty machine list", "POST", "/machine/down", `[]`, nil, 400, "", "List of machines is empty"},
			{"empty machine", "POST", "/machine/down", `[{}]`, nil, 400, "", "Both 'hostname' and 'ip' for a machine are empty"},
			{"bad ip", "POST", "/machine/down", `[{"ip":"10.0.0.300"}]`, nil, 400, "", "Failed to parse IPv4 address '10.0.0.300'"},
			{"duplicate machine", "POST", "/machine/down", `[{"hostname":"a"},{"hostname":"a"}]`, nil, 400, "", `Machine '{"hostname":"a"}' appears more than once in the schedule`},
			{"empty window", "POST", "/maintenance/schedule", `{"windows":[{"machine_ids":[],"unavailability":{"start":{"nanoseconds":1}}}]}`, nil, 400, "", "List of machines in the maintenance window is empty"},
			{"negative duration", "POST", "/maintenance/schedule", `{"windows":[{"machine_ids":[{"hostname":"a"}],"unavailability":{"start":{"nanoseconds":1},"duration":{"nanoseconds":-1}}}]}`, nil, 400, "", "Unavailability 'duration' is negative"},
			{"non-positive weight", "PUT", "/weights", `[{"role":"dev","weight":0}]`, nil, 400, "", "Failed to validate update weights request JSON for role 'dev': Invalid weight '0': Weights must be positive"},
			{"bad role", "PUT", "/weights", `[{"role":"-dev","weight":1}]`, nil, 400, "", "Invalid role '-dev'"},
			{"quota for star", "POST", "/quota", `{"role":"*","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}`, nil, 400, "", "default '*' role"},
			{"delete missing quota", "DELETE", "/quota/nobody", "", nil, 400, "", "Failed to remove quota: Role 'nobody' has no quota set"},
			{"api no content type", "POST", "/api/v1", `{"type":"GET_HEALTH"}`, nil, 400, "", "Expecting 'Content-Type' to be present"},
			{"api protobuf", "POST", "/api/v1", `x`, []string{"Content-Type", "application/x-protobuf"}, 415, "", "application/x-protobuf is not supported"},
			{"api text", "POST", "/api/v1", `x`, []string{"Content-Type", "text/plain"}, 415, "", ""},
			{"api accept protobuf", "POST", "/api/v1", `{"type":"GET_HEALTH"}`, []string{"Content-Type", "application/json", "Accept", "application/x-protobuf"}, 406, "", ""},
			{"api no type", "POST", "/api/v1", `{}`, json, 400, "", "Expecting 'type' to be present"},
			{"api unknown type", "POST", "/api/v1", `{"type":"FLY"}`, json, 400, "", "unknown call type 'FLY'"},
			{"api unimplemented", "POST", "/api/v1", `{"type":"GET_AGENTS"}`, json, 501, "", "Unsupported call type GET_AGENTS"},
			{"api unknown field", "POST", "/api/v1", `{"type":"GET_HEALTH","bogus":1}`, json, 400, "", `unknown field "bogus"`},
			{"api missing argument", "POST", "/api/v1", `{"type":"UPDATE_WEIGHTS"}`, json, 400, "", "Expecting 'update_weights' to be present"},
			{"api bad quota", "POST", "/api/v1", `{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"r","guarantees":{"cpus":{"value":2}},"limits":{"cpus":{"value":1}}}]}}`, json, 400, "", "is not contained within the 'QuotaConfig.limits'"},
			{"unknown endpoint", "GET", "/master/nothing", "", nil, 404, "", ""},
		}
		for _, tt := range tests {
			rec := m.do(tt.method, tt.path, tt.body, tt.hdr...)
			if rec.Code != tt.code {
				t.Errorf("%s: %s %s %q: code %d (%q), want %d", tt.name, tt.method, tt.path, tt.body, rec.Code, rec.Body.String(), tt.code)
				continue
			}
			if tt.allow != "" && rec.Header().Get("Allow") != tt.allow {
				t.Errorf("%s: Allow = %q, want %q", tt.name, rec.Header().Get("Allow"), tt.allow)
			}
			if !strings.Contains(rec.Body.String(), tt.bodyHas) {
				t.Errorf("%s: body %q does not contain %q", tt.name, rec.Body.String(), tt.bodyHas)
			}
		}
	})
}

// TestQuotaAndWeights drives the legacy endpoints and the v1 calls.
func TestQuotaAndWeights(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMaster(t, newFakeCluster(), 5050, nil)
		settle()
		steps := []struct {
			method, path, body string
			code               int
			want               string
		}{
			{"PUT", "/weights", `[{"role":"dev","weight":2.5},{"role":" ops ","weight":1}]`, 200, ""},
			{"GET", "/master/weights", "", 200, `[{"role":"dev","weight":2.5},{"role":"ops","weight":1}]`},
			{"POST", "/quota", `{"role":"dev","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":4}}]}`, 200, ""},
			{"POST", "/quota", `{"role":"dev","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":4}}]}`, 400, "Failed to validate set quota request: Quota cannot be set for a role that already has quota\n"},
			{"GET", "/quota", "", 200, `{"infos":[{"role":"dev","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":4}}]}],"configs":[{"role":"dev","guarantees":{"cpus":{"value":4}},"limits":{"cpus":{"value":4}}}]}`},
			{"DELETE", "/master/quota/dev", "", 200, ""},
			{"GET", "/quota", "", 200, `{}`},
		}
		for i, s := range steps {
			rec := m.do(s.method, s.path, s.body)
			if rec.Code != s.code {
				t.Fatalf("step %d %s %s: %d %q, want %d", i, s.method, s.path, rec.Code, rec.Body.String(), s.code)
			}
			if s.want != "" {
				if diff := cmp.Diff(s.want, rec.Body.String()); diff != "" {
					t.Fatalf("step %d (-want +got):\n%s", i, diff)
				}
			}
		}
		calls := []struct {
			body string
			code int
			want string
		}{
			{`{"type":"UPDATE_QUOTA","update_quota":{"quota_configs":[{"role":"web","guarantees":{"cpus":{"value":1}},"limits":{"cpus":{"value":2},"mem":{"value":1024}}}]}}`, 200, ""},
			{`{"type":"GET_QUOTA"}`, 200, `{"get_quota":{"status":{"infos":[{"role":"web","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}],"configs":[{"role":"web","guarantees":{"cpus":{"value":1}},"limits":{"cpus":{"value":2},"mem":{"value":1024}}}]}},"type":"GET_QUOTA"}`},
			{`{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"dev","weight":3}]}}`, 200, ""},
			{`{"type":"GET_WEIGHTS"}`, 200, `{"get_weights":{"weight_infos":[{"role":"dev","weight":3},{"role":"ops","weight":1}]},"type":"GET_WEIGHTS"}`},
			{`{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{"schedule":{"windows":[{"machine_ids":[{"hostname":"h1"}],"unavailability":{"start":{"nanoseconds":5}}}]}}}`, 200, ""},
			{`{"type":"GET_MAINTENANCE_SCHEDULE"}`, 200, `{"get_maintenance_schedule":{"schedule":{"windows":[{"machine_ids":[{"hostname":"h1"}],"unavailability":{"start":{"nanoseconds":5}}}]}},"type":"GET_MAINTENANCE_SCHEDULE"}`},
			{`{"type":"START_MAINTENANCE","start_maintenance":{"machines":[{"hostname":"h1"}]}}`, 200, ""},
			{`{"type":"GET_MAINTENANCE_STATUS"}`, 200, `{"get_maintenance_status":{"status":{"down_machines":[{"hostname":"h1"}]}},"type":"GET_MAINTENANCE_STATUS"}`},
			{`{"type":"STOP_MAINTENANCE","stop_maintenance":{"machines":[{"hostname":"h1"}]}}`, 200, ""},
			{`{"type":"STOP_MAINTENANCE","stop_maintenance":{"machines":[{"hostname":"h1"}]}}`, 400, "Machine '{\"hostname\":\"h1\"}' is not part of a maintenance schedule\n"},
			{`{"type":"GET_FLAGS"}`, 200, `{"get_flags":{"flags":[{"name":"quorum","value":"2"},{"name":"work_dir","value":"/var/lib/regent"}]},"type":"GET_FLAGS"}`},
			{`{"type":"GET_VERSION"}`, 200, `{"get_version":{"version_info":{"version":"0.1.0"}},"type":"GET_VERSION"}`},
		}
		for i, c := range calls {
			rec := m.api(c.body)
			if rec.Code != c.code {
				t.Fatalf("call %d %s: %d %q, want %d", i, c.body, rec.Code, rec.Body.String(), c.code)
			}
			if c.want != "" {
				if diff := cmp.Diff(c.want, rec.Body.String()); diff != "" {
					t.Fatalf("call %d (-want +got):\n%s", i, diff)
				}
			}
		}
		gm, _ := decodeJSON[map[string]any](t, m.api(`{"type":"GET_MASTER"}`))["get_master"].(map[string]any)
		if mi, _ := gm["master_info"].(map[string]any); mi["id"] != "master-5050" || mi["hostname"] != "m5050.test" {
			t.Errorf("GET_MASTER master_info = %v", gm["master_info"])
		}
		if rec := m.api(`{"type":"GET_STATE"}`); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"get_agents":{"agents":[],"recovered_agents":[]}`) {
			t.Errorf("GET_STATE = %d %s", rec.Code, rec.Body.String())
		}
		admit := Operation{Type: OpAdmitSlave, SlaveInfo: &SlaveInfo{Hostname: "agent1", Port: 5051, ID: SlaveID{"S1"},
			Resources: []Resource{{Name: "cpus", Type: "SCALAR", Scalar: Scalar{4}}}}}
		if err := m.reg.submit(t.Context(), admit); err != nil {
			t.Fatalf("admit agent: %v", err)
		}
		if rec := m.do("GET", "/state-summary", ""); rec.Body.String() != `{"cluster":"test","frameworks":[],"hostname":"m5050.test","slaves":[{"active":true,"deactivated":false,"hostname":"agent1","id":"S1","port":5051,"resources":{"cpus":4}}]}` {
			t.Errorf("/state-summary = %s", rec.Body.String())
		}
		if st := decodeJSON[map[string]any](t, m.do("GET", "/state", "")); st["activated_slaves"] != 1.0 || len(st["recovered_slaves"].([]any)) != 1 {
			t.Errorf("/state activated_slaves %v recovered_slaves %v", st["activated_slaves"], st["recovered_slaves"])
		}
		if rec := m.do("GET", "/flags", ""); rec.Body.String() != `{"flags":{"quorum":"2","work_dir":"/var/lib/regent"}}` {
			t.Errorf("/flags = %s", rec.Body.String())
		}
		if rec := m.do("GET", "/metrics", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "regent_registrar_log_write_seconds_bucket") || !strings.Contains(rec.Body.String(), "regent_http_request_duration_seconds") {
			t.Errorf("/metrics = %d, missing histograms", rec.Code)
		}
	})
}

// TestLeaderEpochHeader checks that a leader's leader-only answers name its
// epoch, that no other answer carries the header, and that the next leader's
// epoch is greater.
func TestLeaderEpochHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		leader := startMaster(t, c, 5050, nil)
		settle()
		follower := startMaster(t, c, 5051, nil)
		settle()
		leader.Master.mu.RLock()
		n := leader.epoch
		leader.Master.mu.RUnlock()
		if n == 0 {
			t.Fatal("leader has no epoch")
		}
		epoch := strconv.FormatUint(n, 10)
		tests := []struct {
			name         string
			m            *testMaster
			method, path string
			body         string
			code         int
			want         string
		}{
			{"leader reads weights", leader, "GET", "/master/weights", "", 200, epoch},
			{"leader writes weights", leader, "PUT", "/weights", `[{"role":"dev","weight":2}]`, 200, epoch},
			{"leader state", leader, "GET", "/master/state", "", 200, epoch},
			{"leader refuses a bad write", leader, "PUT", "/weights", `[{"role":"dev","weight":0}]`, 400, epoch},
			{"leader health", leader, "GET", "/health", "", 200, ""},
			{"leader redirect", leader, "GET", "/redirect", "", 307, ""},
			{"leader registry", leader, "GET", "/registrar(1)/registry", "", 200, ""},
			{"follower redirects weights", follower, "GET", "/master/weights", "", 307, ""},
			{"follower registry", follower, "GET", "/registrar(1)/registry", "", 200, ""},
		}
		for _, tt := range tests {
			rec := tt.m.do(tt.method, tt.path, tt.body)
			if got := rec.Header().Get(LeaderEpochHeader); rec.Code != tt.code || got != tt.want {
				t.Errorf("%s: %s %s = %d %s %q, want %d %q", tt.name, tt.method, tt.path, rec.Code, LeaderEpochHeader, got, tt.code, tt.want)
			}
		}

		c.depose()
		settle()
		if !follower.isLeading() {
			t.Fatalf("follower not leading after the leader was deposed: %s", follower.heartbeat())
		}
		rec := follower.do("GET", "/master/weights", "")
		next, err := strconv.ParseUint(rec.Header().Get(LeaderEpochHeader), 10, 64)
		if rec.Code != 200 || err != nil || next <= n {
			t.Errorf("new leader: GET /master/weights = %d with epoch %q (%v), want 200 and an epoch above %d", rec.Code, rec.Header().Get(LeaderEpochHeader), err, n)
		}
	})
}
