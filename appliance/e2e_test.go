package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each test here starts real "regent run" appliances on loopback (see
// e2e_helpers_test.go) and drives them through the HTTP API, as an operator
// or a Mesos client would.

func followers(c *localCluster, leader *localMaster) []*localMaster {
	var out []*localMaster
	for _, m := range c.Masters() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

// TestE2ELeaderAndRedirects checks that three masters elect exactly one
// leader, that the others answer leader-only endpoints with 307 and the
// exact Location, and that writes through a follower reach the registry.
func TestE2ELeaderAndRedirects(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	port := strconv.Itoa(leader.APIPort)

	for _, f := range followers(c, leader) {
		for _, tc := range []struct{ path, want string }{
			{"/master/state", "//127.0.0.1:" + port + "/master/state"},
			{"/state", "//127.0.0.1:" + port + "/master/state"},
			{"/master/weights?x=1", "//127.0.0.1:" + port + "/master/weights?x=1"},
			{"/master/redirect", "//127.0.0.1:" + port},
		} {
			r := do(t, http.MethodGet, f.APIURL()+tc.path, "", "")
			if r.Code != http.StatusTemporaryRedirect || r.Header.Get("Location") != tc.want {
				t.Errorf("GET %s on %s = %d Location %q, want 307 %q", tc.path, f.Name, r.Code, r.Header.Get("Location"), tc.want)
			}
		}
		if r := do(t, http.MethodGet, f.APIURL()+"/redirect/loop", "", ""); r.Code != http.StatusNotFound {
			t.Errorf("GET /redirect/loop on %s = %d, want 404", f.Name, r.Code)
		}
		if r := do(t, http.MethodGet, f.APIURL()+"/master/health", "", ""); r.Code != http.StatusOK {
			t.Errorf("GET /master/health on %s = %d, want 200", f.Name, r.Code)
		}
	}
	if r := do(t, http.MethodGet, leader.APIURL()+"/master/state", "", ""); r.Code != http.StatusOK {
		t.Fatalf("GET /master/state on the leader = %d %s", r.Code, r.Body)
	}

	f := followers(c, leader)[0]
	if !putWeight(t, c, f, "analytics", 2.5, 10*time.Second) {
		t.Fatal("PUT weights through a follower was not acknowledged")
	}
	for _, m := range c.Masters() {
		if got := weights(t, c, m); got["analytics"] != 2.5 {
			t.Errorf("weights via %s = %v, want analytics=2.5", m.Name, got)
		}
	}
}

// TestE2EAdvertisedAddress checks that MasterInfo and redirects carry the
// advertised port, not the bound one.
func TestE2EAdvertisedAddress(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	adv := map[*localMaster]int{}
	for i, m := range c.Masters() {
		adv[m] = 40000 + i
		m.Args = []string{"--advertise_ip=127.0.0.1", "--advertise_port=" + strconv.Itoa(adv[m])}
	}
	startAll(t, c)
	// Leader() maps Locations by port; with advertised ports, ask each
	// master until one answers /master/state itself.
	var leader *localMaster
	deadline := time.Now().Add(60 * time.Second)
	for leader == nil && time.Now().Before(deadline) {
		for _, m := range c.Masters() {
			if r := do(t, http.MethodGet, m.APIURL()+"/master/state", "", ""); r.Code == http.StatusOK {
				leader = m
			}
		}
		time.Sleep(50 * time.Millisecond) // polling real processes
	}
	if leader == nil {
		t.Fatal("no master answered /master/state within 60s")
	}
	want := "//127.0.0.1:" + strconv.Itoa(adv[leader]) + "/master/state"
	for _, f := range followers(c, leader) {
		var r httpResult
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if r = do(t, http.MethodGet, f.APIURL()+"/master/state", "", ""); r.Code == http.StatusTemporaryRedirect {
				break
			}
		}
		if r.Code != http.StatusTemporaryRedirect || r.Header.Get("Location") != want {
			t.Errorf("GET /master/state on %s = %d Location %q, want 307 %q", f.Name, r.Code, r.Header.Get("Location"), want)
		}
	}
	r := do(t, http.MethodGet, leader.APIURL()+"/master/state", "", "")
	var st struct {
		LeaderInfo struct {
			Port    int `json:"port"`
			Address struct {
				IP   string `json:"ip"`
				Port int    `json:"port"`
			} `json:"address"`
		} `json:"leader_info"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("decode /master/state: %v", err)
	}
	if st.LeaderInfo.Port != adv[leader] || st.LeaderInfo.Address.Port != adv[leader] || st.LeaderInfo.Address.IP != "127.0.0.1" {
		t.Errorf("leader_info = %+v, want advertised 127.0.0.1:%d", st.LeaderInfo, adv[leader])
	}
}

// TestE2EQuorumLost checks that with two of three masters stopped the last
// one answers leader-only endpoints with 503, Retry-After and a reason, and
// that service resumes, with nothing lost, when a master returns.
func TestE2EQuorumLost(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	if !putWeight(t, c, leader, "before", 1.5, 10*time.Second) {
		t.Fatal("write before the fault was not acknowledged")
	}
	fs := followers(c, leader)
	// Stop the leader and one follower: the survivor cannot form a quorum.
	for _, m := range []*localMaster{leader, fs[0]} {
		if err := m.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	survivor := fs[1]
	var r httpResult
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r = do(t, http.MethodGet, survivor.APIURL()+"/master/state", "", ""); r.Code == http.StatusServiceUnavailable {
			break
		}
	}
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /master/state on the survivor = %d %s, want 503", r.Code, r.Body)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if !bytes.Contains(r.Body, []byte("leader")) && !bytes.Contains(r.Body, []byte("quorum")) {
		t.Errorf("503 body %s names neither the leader nor the quorum", r.Body)
	}
	// A write now is refused, not acknowledged.
	if rr := do(t, http.MethodPut, survivor.APIURL()+"/master/weights", "application/json", `[{"role":"during","weight":2}]`); rr.Code == http.StatusOK {
		t.Errorf("a write without a quorum was acknowledged")
	}

	if err := c.Start(fs[0]); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c, 60*time.Second)
	if !putWeight(t, c, survivor, "after", 3, 30*time.Second) {
		t.Fatal("write after the quorum returned was not acknowledged")
	}
	got := weights(t, c, survivor)
	if got["before"] != 1.5 || got["after"] != 3 {
		t.Errorf("weights = %v, want before=1.5 after=3", got)
	}
}

// TestE2ELeaderCutOffExits pauses both followers: the leader cannot renew
// its lease, exits with the documented reason, and its supervisor restarts
// it.
func TestE2ELeaderCutOffExits(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	fs := followers(c, leader)
	for _, f := range fs {
		if err := f.SignalAll(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, f := range fs {
			_ = f.SignalAll(syscall.SIGCONT)
		}
	}()
	const reason = "cut off from the quorum"
	found := false
	for end := time.Now().Add(20 * time.Second); !found && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		starts := 0
		exitLogged := false
		for _, l := range leader.Logs() {
			if strings.Contains(l, reason) {
				exitLogged = true
			}
			if strings.Contains(l, "child started") {
				starts++
			}
		}
		found = exitLogged && starts >= 2
	}
	if !found {
		t.Fatalf("the leader did not exit with %q and restart within 20s", reason)
	}
	if leader.Pid() == 0 {
		t.Fatal("the leader's supervisor exited; it should have restarted the master")
	}
	for _, f := range fs {
		_ = f.SignalAll(syscall.SIGCONT)
	}
	waitLeader(t, c, 60*time.Second)
}

// TestE2EKillLeader kills the leader's whole appliance with SIGKILL while a
// client writes: a new leader takes over, every acknowledged write is
// present, and the returning master catches up to an identical registry.
func TestE2EKillLeader(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	fs := followers(c, leader)
	acked := map[string]float64{}
	for i := range 20 {
		role := fmt.Sprintf("r%02d", i)
		if putWeight(t, c, fs[0], role, float64(i+1), 10*time.Second) {
			acked[role] = float64(i + 1)
		}
	}
	leader.Kill()
	newLeader := waitLeader(t, c, 30*time.Second)
	if newLeader == leader {
		t.Fatal("the killed master is still the leader")
	}
	for i := 20; i < 30; i++ {
		role := fmt.Sprintf("r%02d", i)
		if putWeight(t, c, fs[1], role, float64(i+1), 20*time.Second) {
			acked[role] = float64(i + 1)
		}
	}
	got := weights(t, c, fs[1])
	for role, w := range acked {
		if got[role] != w {
			t.Errorf("acknowledged weight %s=%g is %g after failover", role, w, got[role])
		}
	}
	if len(acked) < 25 {
		t.Errorf("only %d of 30 writes were acknowledged", len(acked))
	}
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c, 60*time.Second)
	waitSameRegistry(t, c, 30*time.Second)
}

// waitSameRegistry waits until every master reports the same registry on
// /registrar(1)/registry, which any master answers from its own replica.
func waitSameRegistry(t *testing.T, c *localCluster, d time.Duration) {
	t.Helper()
	var regs []string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		regs = regs[:0]
		for _, m := range c.Masters() {
			r := do(t, http.MethodGet, m.APIURL()+"/registrar(1)/registry", "", "")
			regs = append(regs, fmt.Sprintf("%d %s", r.Code, registryWithoutMaster(r.Body)))
		}
		same := strings.HasPrefix(regs[0], "200 ")
		for _, r := range regs[1:] {
			same = same && r == regs[0]
		}
		if same {
			return
		}
	}
	t.Fatalf("registries differ after %v:\n%s", d, strings.Join(regs, "\n"))
}

// registryWithoutMaster drops the registry's leader record, which followers
// learn a moment after the leader writes it, and re-encodes the rest
// canonically.
func registryWithoutMaster(b []byte) string {
	var reg map[string]any
	if err := json.Unmarshal(b, &reg); err != nil {
		return string(b)
	}
	delete(reg, "master")
	out, _ := json.Marshal(reg)
	return string(out)
}

// TestE2EMaintenanceWalkthrough follows the Mesos maintenance docs with the
// same request bodies: post a schedule, take the machine down, check the
// status, bring it up.
func TestE2EMaintenanceWalkthrough(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	waitLeader(t, c, 60*time.Second)
	m := c.Masters()[0]
	schedule := `{
  "windows" : [
    {
      "machine_ids" : [
        { "hostname" : "machine1", "ip" : "10.0.0.1" },
        { "hostname" : "machine2", "ip" : "10.0.0.2" }
      ],
      "unavailability" : {
        "start" : { "nanoseconds" : 1443830400000000000 },
        "duration" : { "nanoseconds" : 3600000000000 }
      }
    }
  ]
}`
	steps := []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"POST", "/master/maintenance/schedule", schedule, 200, ""},
		{"GET", "/master/maintenance/schedule", "", 200, "machine1"},
		{"GET", "/master/maintenance/status", "", 200, "draining_machines"},
		{"POST", "/master/machine/down", `[{ "hostname" : "machine1", "ip" : "10.0.0.1" }]`, 200, ""},
		{"POST", "/master/machine/down", `[{ "hostname" : "machine3", "ip" : "10.0.0.3" }]`, 400, "not part of a maintenance schedule"},
		{"GET", "/master/maintenance/status", "", 200, "down_machines"},
		{"POST", "/master/machine/up", `[{ "hostname" : "machine1", "ip" : "10.0.0.1" }]`, 200, ""},
		{"POST", "/master/machine/up", `[{ "hostname" : "machine2", "ip" : "10.0.0.2" }]`, 400, ""},
	}
	for _, s := range steps {
		r := doLeader(t, c, m, s.method, s.path, "application/json", s.body, 10*time.Second)
		if r.Code != s.code || !bytes.Contains(r.Body, []byte(s.contains)) {
			t.Errorf("%s %s = %d %s, want %d containing %q", s.method, s.path, r.Code, r.Body, s.code, s.contains)
		}
	}
	r := doLeader(t, c, m, "GET", "/master/maintenance/status", "", "", 10*time.Second)
	var st struct {
		Draining []struct {
			ID struct{ Hostname string } `json:"id"`
		} `json:"draining_machines"`
		Down []any `json:"down_machines"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("decode status %s: %v", r.Body, err)
	}
	if len(st.Down) != 0 || len(st.Draining) != 1 || st.Draining[0].ID.Hostname != "machine2" {
		t.Errorf("status after machine/up = %s, want machine2 draining and nothing down", r.Body)
	}
}

// TestE2ERestartAll restarts every master at once: the registry survives and
// is identical on all of them.
func TestE2ERestartAll(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	for i := range 10 {
		if !putWeight(t, c, leader, fmt.Sprintf("role%d", i), float64(i+1), 10*time.Second) {
			t.Fatalf("write %d not acknowledged", i)
		}
	}
	if err := c.StopAll(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	startAll(t, c)
	leader = waitLeader(t, c, 60*time.Second)
	got := weights(t, c, leader)
	for i := range 10 {
		if got[fmt.Sprintf("role%d", i)] != float64(i+1) {
			t.Errorf("after restart weights = %v, missing role%d", got, i)
			break
		}
	}
	waitSameRegistry(t, c, 30*time.Second)
}
