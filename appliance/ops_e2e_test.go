package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// The Operational Guide's procedures on real "regent run" appliances
// (make e2e-ops). Each test writes registry data (weights) before, during
// and after its procedure, and at the end checks that every acknowledged
// write is present and that every replica holds the same learned entries:
// online (the registry on /registrar(1)/registry of every master) and
// offline (the replicas' Badger stores, opened read-only after a stop).
// docs/operations.md is the runbook these tests follow, command for command.

// opsLoad writes unique weights through the running masters in the
// background and records every write that was acknowledged (200).
type opsLoad struct {
	t      *testing.T
	c      *localCluster
	prefix string
	via    func() []*localMaster // where the client may send requests

	mu       sync.Mutex
	acked    map[string]float64
	attempts int
	notify   chan struct{} // closed and replaced at each ack

	stop chan struct{}
	done chan struct{}
}

// startLoad starts a background writer that sends its writes to the masters
// via returns (default: every master defined, in turn; one that is down
// refuses the connection at once). via must not look at processes: the
// localCluster's process state belongs to the test goroutine.
func startLoad(t *testing.T, c *localCluster, prefix string, via func() []*localMaster) *opsLoad {
	t.Helper()
	if via == nil {
		via = c.Masters
	}
	l := &opsLoad{t: t, c: c, prefix: prefix, via: via, acked: map[string]float64{}, notify: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	t.Cleanup(l.Stop)
	return l
}

func (l *opsLoad) run() {
	defer close(l.done)
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		ms := l.via()
		if len(ms) == 0 {
			time.Sleep(50 * time.Millisecond) // polling for a master to return
			continue
		}
		m := ms[i%len(ms)]
		role := fmt.Sprintf("%s-%05d", l.prefix, i)
		w := float64(i + 1)
		ok := putOnce(m.APIURL(), role, w)
		l.mu.Lock()
		l.attempts++
		if ok {
			l.acked[role] = w
			close(l.notify)
			l.notify = make(chan struct{})
		}
		l.mu.Unlock()
		if !ok {
			time.Sleep(50 * time.Millisecond) // back off from a master that cannot serve now
		}
	}
}

// putOnce sets one weight through base, following one 307, and reports
// whether the write was acknowledged.
func putOnce(base, role string, w float64) bool {
	body := fmt.Sprintf(`[{"role":%q,"weight":%g}]`, role, w)
	url := base + "/master/weights"
	for range 2 {
		req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := noRedirectClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTemporaryRedirect {
			url = "http:" + resp.Header.Get("Location")
			continue
		}
		return resp.StatusCode == http.StatusOK
	}
	return false
}

// Acked returns a copy of the acknowledged writes.
func (l *opsLoad) Acked() map[string]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]float64, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// WaitAcks waits until n more writes than now have been acknowledged: the
// cluster keeps serving writes.
func (l *opsLoad) WaitAcks(n int, d time.Duration, what string) {
	l.t.Helper()
	l.mu.Lock()
	target := len(l.acked) + n
	l.mu.Unlock()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		got, ch, attempts := len(l.acked), l.notify, l.attempts
		l.mu.Unlock()
		if got >= target {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			l.t.Fatalf("%s: %d of %d writes acknowledged after %v (%d attempts)", what, got, target, d, attempts)
		}
	}
}

// Stop stops the writer and waits for it. Idempotent.
func (l *opsLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// checkAcked checks through m that every acknowledged write is present with
// its value.
func checkAcked(t *testing.T, c *localCluster, m *localMaster, acked map[string]float64) {
	t.Helper()
	got := weights(t, c, m)
	missing := 0
	for role, w := range acked {
		if got[role] != w {
			if missing < 5 {
				t.Errorf("acknowledged weight %s=%g reads %g", role, w, got[role])
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes missing", missing, len(acked))
	}
	t.Logf("%d acknowledged writes present (registry holds %d weights)", len(acked), len(got))
}

// mustPut writes one weight through m and fails the test if it is not
// acknowledged within d.
func mustPut(t *testing.T, c *localCluster, m *localMaster, acked map[string]float64, role string, w float64, d time.Duration) {
	t.Helper()
	if !putWeight(t, c, m, role, w, d) {
		t.Fatalf("write %s=%g through %s not acknowledged within %v", role, w, m.Name, d)
	}
	acked[role] = w
}

// waitSameRegistryOf waits until the masters ms report the same registry.
func waitSameRegistryOf(t *testing.T, ms []*localMaster, d time.Duration) {
	t.Helper()
	var regs []string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		regs = regs[:0]
		for _, m := range ms {
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
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "%s: %.300s\n", m.Name, regs[i])
	}
	t.Fatalf("registries differ after %v:\n%s", d, b.String())
}

// replicaImage is one replica's learned entries, read offline.
type replicaImage struct {
	name           string
	replica        paxos.ReplicaID
	cluster        paxos.ClusterID
	status         paxos.Status
	begin, learned paxos.Position // learned: one past the last position learned in order
	entries        map[paxos.Position]paxos.Entry
}

// readReplica opens m's replica read-only and reads every learned entry.
func readReplica(t *testing.T, m *localMaster) (replicaImage, bool) {
	t.Helper()
	dir := filepath.Join(m.WorkDir, ReplicatedLogDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return replicaImage{}, false
	}
	st, err := badgerstore.Open(dir, badgerstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s read-only: %v", dir, err)
	}
	defer st.Close()
	hs, err := st.InitialState()
	if err != nil {
		t.Fatalf("%s: initial state: %v", m.Name, err)
	}
	img := replicaImage{name: m.Name, replica: hs.Replica, cluster: hs.Cluster, status: hs.Status, begin: hs.Begin,
		learned: hs.Begin, entries: map[paxos.Position]paxos.Entry{}}
	last, ok, err := st.LastPosition()
	if err != nil {
		t.Fatalf("%s: last position: %v", m.Name, err)
	}
	if !ok {
		return img, true
	}
	for from := hs.Begin; from <= last; {
		as, err := st.Actions(from, last+1, 4<<20)
		if err != nil {
			t.Fatalf("%s: read actions from %d: %v", m.Name, from, err)
		}
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			if learned(hs, a) {
				img.entries[a.Position] = a.Entry
			}
		}
		from = as[len(as)-1].Position + 1
	}
	for {
		if _, ok := img.entries[img.learned]; !ok {
			break
		}
		img.learned++
	}
	return img, true
}

// compareReplicasOffline stops every master and compares the learned
// entries of every replica of the cluster (those of removed masters
// included: what a replica learned is chosen, whoever holds it). A position
// learned by two replicas must hold the same entry; the replicas in final
// must have learned the same positions in order, from the highest begin
// on, up to within the slack of learned broadcasts in flight at the stop.
func compareReplicasOffline(t *testing.T, c *localCluster, final []*localMaster) {
	t.Helper()
	if err := c.StopAll(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	var imgs []replicaImage
	for _, m := range c.Masters() {
		if img, ok := readReplica(t, m); ok {
			imgs = append(imgs, img)
		}
	}
	var cluster paxos.ClusterID
	compared := 0
	for i, a := range imgs {
		if slices.ContainsFunc(final, func(m *localMaster) bool { return m.Name == a.name }) {
			if cluster == 0 {
				cluster = a.cluster
			}
			if a.cluster != cluster || a.status != paxos.StatusVoting {
				t.Errorf("replica of %s: cluster %d status %v, want cluster %d VOTING", a.name, a.cluster, a.status, cluster)
			}
		}
		for _, b := range imgs[i+1:] {
			if a.cluster != b.cluster {
				continue // a refused stranger's log (another cluster) is its own
			}
			for p, ea := range a.entries {
				eb, ok := b.entries[p]
				if !ok || p < max(a.begin, b.begin) {
					continue
				}
				compared++
				if diff := cmp.Diff(ea, eb); diff != "" {
					t.Errorf("position %d learned differently by %s and %s (-%s +%s):\n%s", p, a.name, b.name, a.name, b.name, diff)
				}
			}
		}
	}
	var lo, hi paxos.Position
	var begin paxos.Position
	for _, img := range imgs {
		if !slices.ContainsFunc(final, func(m *localMaster) bool { return m.Name == img.name }) {
			continue
		}
		begin = max(begin, img.begin)
		if lo == 0 || img.learned < lo {
			lo = img.learned
		}
		hi = max(hi, img.learned)
	}
	for _, img := range imgs {
		if !slices.ContainsFunc(final, func(m *localMaster) bool { return m.Name == img.name }) {
			continue
		}
		for p := begin; p < lo; p++ {
			if _, ok := img.entries[p]; !ok {
				t.Errorf("replica of %s has not learned position %d (common range [%d, %d))", img.name, p, begin, lo)
				break
			}
		}
	}
	if lo <= begin {
		t.Errorf("the final replicas share no learned position: begin %d, learned to %d", begin, lo)
	}
	if hi-lo > 64 {
		t.Errorf("final replicas learned to %d..%d: one lags far behind", lo, hi)
	}
	t.Logf("offline: %d replicas, %d position pairs compared, common learned range [%d, %d), highest %d", len(imgs), compared, begin, lo, hi)
}

// runRegent runs the regent binary with args (a CLI command of the runbook)
// and returns its exit code and output.
func runRegent(t *testing.T, c *localCluster, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var xe *exec.ExitError
	switch {
	case errors.As(err, &xe):
		code = xe.ExitCode()
	case err != nil:
		t.Fatalf("regent %v: %v", args, err)
	}
	t.Logf("$ regent %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// statusOut runs "regent status" on m's host (its configuration: its work
// dir and its API address) and returns what it printed.
func statusOut(t *testing.T, c *localCluster, m *localMaster) string {
	t.Helper()
	cmd := exec.Command(c.Binary, "status", "-config", m.Config)
	out, _ := cmd.Output() // exit 3 while the local supervisor is not running
	return string(out)
}

// replogStatus reads m's /replog/status.
func replogStatus(t *testing.T, m *localMaster) (statusJSON, bool) {
	t.Helper()
	r := do(t, http.MethodGet, m.APIURL()+"/replog/status", "", "")
	var st statusJSON
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &st) != nil {
		return st, false
	}
	return st, true
}

// waitVoters waits until the leader (asked through m) reports exactly the
// voters at the given peer addresses, all connected, heard from within a
// second, VOTING and caught up.
func waitVoters(t *testing.T, m *localMaster, addrs []string, d time.Duration) membersJSON {
	t.Helper()
	want := slices.Clone(addrs)
	slices.Sort(want)
	var ms membersJSON
	var last string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r := doLeader(t, nil, m, http.MethodGet, "/replog/members", "", "", 5*time.Second)
		if r.Code != http.StatusOK || json.Unmarshal(r.Body, &ms) != nil {
			last = fmt.Sprintf("%d %s", r.Code, r.Body)
			continue
		}
		var got []string
		ok := true
		for _, x := range ms.Members {
			if x.Member && x.Voter {
				got = append(got, x.Address)
				heard := x.Self || (x.HeardMS != nil && *x.HeardMS < 1000)
				ok = ok && x.Status == "VOTING" && x.Lag != nil && *x.Lag < 64 && heard && x.Connected
			} else if x.Member {
				ok = false
			}
		}
		slices.Sort(got)
		if ok && slices.Equal(got, want) {
			return ms
		}
		last = fmt.Sprintf("%+v", ms)
	}
	t.Fatalf("voters never became %v; last answer: %s", want, last)
	return ms
}

func peerAddrs(ms ...*localMaster) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.PeerAddr())
	}
	return out
}

// restartWith stops m, sets the guide's flags and starts it again.
func restartWith(t *testing.T, c *localCluster, m *localMaster, args ...string) {
	t.Helper()
	if err := m.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	m.Args = args
	if err := c.Start(m); err != nil {
		t.Fatal(err)
	}
}

// logsContain reports whether one of m's output lines contains every sub.
func logsContain(m *localMaster, subs ...string) bool {
	for _, l := range m.Logs() {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// waitLogs waits until m has logged a line with every sub.
func waitLogs(t *testing.T, m *localMaster, d time.Duration, subs ...string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if logsContain(m, subs...) {
			return
		}
	}
	t.Fatalf("%s never logged a line with %q within %v", m.Name, subs, d)
}

func mastersFlag(ms ...*localMaster) string {
	return "--masters=" + strings.Join(peerAddrs(ms...), ",")
}

// TestOpsFaultTolerance is the guide's table: 1, 3 and 5 masters with
// quorum 1, 2 and 3 keep serving writes with 0, 1 and 2 masters stopped;
// one more stopped master stops the writes with 503 and a reason, the
// leader exits (cut off from the quorum), nothing is lost, and service
// resumes when a master returns.
func TestOpsFaultTolerance(t *testing.T) {
	for _, tc := range []struct{ masters, quorum int }{{1, 1}, {3, 2}, {5, 3}} {
		t.Run(fmt.Sprintf("%dMasters", tc.masters), func(t *testing.T) {
			c := newTestCluster(t, tc.masters, tc.quorum)
			startAll(t, c)
			leader := waitLeader(t, c, 60*time.Second)
			acked := map[string]float64{}
			mustPut(t, c, leader, acked, "before", 1, 20*time.Second)
			load := startLoad(t, c, "ft", nil)
			load.WaitAcks(5, 30*time.Second, "writes before the faults")

			fs := followers(c, leader)
			tolerated := tc.quorum - 1
			for _, f := range fs[:tolerated] {
				if err := f.Stop(20 * time.Second); err != nil {
					t.Fatal(err)
				}
				load.WaitAcks(5, 30*time.Second, fmt.Sprintf("writes with %s stopped", f.Name))
			}
			var lastStopped *localMaster
			if tc.masters == 1 {
				lastStopped = leader
			} else {
				lastStopped = fs[tolerated]
			}
			if err := lastStopped.Stop(20 * time.Second); err != nil {
				t.Fatal(err)
			}
			if tc.masters > 1 {
				// The leader cannot renew its lease: it answers 503 with the
				// reason, then exits; its supervisor restarts it, and it waits
				// for a quorum.
				waitLogs(t, leader, 20*time.Second, "cut off from the quorum")
				var r httpResult
				for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
					r = do(t, http.MethodPut, leader.APIURL()+"/master/weights", "application/json", `[{"role":"refused","weight":9}]`)
					if r.Code == http.StatusServiceUnavailable {
						break
					}
				}
				if r.Code != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
					!(bytes.Contains(r.Body, []byte("quorum")) || bytes.Contains(r.Body, []byte("leader"))) {
					t.Errorf("a write without a quorum = %d %q (Retry-After %q), want 503 naming the quorum or the leader",
						r.Code, r.Body, r.Header.Get("Retry-After"))
				}
				if code, _, errOut := runRegent(t, c, "members", "list", "-address", leader.APIURL()); code != ExitTempFail {
					t.Errorf("regent members list without a quorum = %d %q, want %d", code, errOut, ExitTempFail)
				}
				if st, ok := replogStatus(t, leader); ok {
					t.Logf("/replog/status without a quorum: role %s, %d of %d voters reachable, quorum %d", st.Role, st.Reachable, st.Voters, st.Quorum)
					if st.Reachable >= st.Quorum {
						t.Errorf("status says %d reachable of quorum %d with too many masters stopped", st.Reachable, st.Quorum)
					}
				}
			}
			before := len(load.Acked())
			time.Sleep(time.Second) // a window in which no write may be acknowledged
			if n := len(load.Acked()); n != before {
				t.Errorf("%d writes acknowledged without a quorum", n-before)
			}

			if err := c.Start(lastStopped); err != nil {
				t.Fatal(err)
			}
			load.WaitAcks(5, 60*time.Second, "writes after a master returned")
			load.Stop()
			l := waitLeader(t, c, 60*time.Second)
			mustPut(t, c, l, acked, "after", 3, 20*time.Second)
			for k, v := range load.Acked() {
				acked[k] = v
			}
			checkAcked(t, c, l, acked)
			for _, f := range fs[:tolerated] {
				if err := c.Start(f); err != nil {
					t.Fatal(err)
				}
			}
			waitLeader(t, c, 60*time.Second)
			waitSameRegistryOf(t, c.Masters(), 60*time.Second)
			compareReplicasOffline(t, c, c.Masters())
		})
	}
}

// TestOpsGrowThreeToFive follows the guide: restart the three masters with
// --quorum=3 (and the five-host list), then start two new masters with
// --quorum=3; they catch up and vote. Writes continue throughout except
// for the moments a restart costs.
func TestOpsGrowThreeToFive(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	acked := map[string]float64{}
	mustPut(t, c, leader, acked, "before", 1, 20*time.Second)
	load := startLoad(t, c, "grow", nil)
	load.WaitAcks(5, 30*time.Second, "writes before the procedure")

	newMs, err := c.Add(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	all := c.Masters()
	five := mastersFlag(all...)
	// Step 2: restart the original three with --quorum=3, followers first,
	// one at a time; each must be back before the next goes.
	old := append(followers(c, leader)[:2:2], leader)
	old = slices.DeleteFunc(old, func(m *localMaster) bool { return slices.Contains(newMs, m) })
	for _, m := range old {
		restartWith(t, c, m, "--quorum=3", five)
		waitLeader(t, c, 60*time.Second)
		load.WaitAcks(3, 60*time.Second, "writes after restarting "+m.Name+" with --quorum=3")
	}
	// Three masters at quorum 3: the log and its metrics count 3 of 3 (no
	// failure tolerated in this window, as the guide's procedure has it).
	l3 := waitLeader(t, c, 60*time.Second)
	var snap map[string]float64
	r := do(t, http.MethodGet, l3.APIURL()+"/metrics/snapshot", "", "")
	if err := json.Unmarshal(r.Body, &snap); err != nil {
		t.Fatalf("decode /metrics/snapshot %s: %v", r.Body, err)
	}
	if snap["registrar/log/quorum"] != 3 || snap["registrar/log/ensemble_size"] != 3 {
		t.Errorf("metrics with three masters at --quorum=3: quorum %v, ensemble_size %v; want 3 and 3",
			snap["registrar/log/quorum"], snap["registrar/log/ensemble_size"])
	}
	// Step 3: start the two new masters with --quorum=3.
	for _, m := range newMs {
		m.Args = []string{"--quorum=3", five}
		if err := c.Start(m); err != nil {
			t.Fatal(err)
		}
	}
	ms := waitVoters(t, all[0], peerAddrs(all...), 90*time.Second)
	if ms.Quorum != 3 || ms.Voters != 5 {
		t.Errorf("after growing: %d voters, quorum %d; want 5 and 3", ms.Voters, ms.Quorum)
	}
	load.WaitAcks(5, 30*time.Second, "writes with five masters")
	code, out, _ := runRegent(t, c, "members", "list", "-address", newMs[0].APIURL())
	if code != 0 || !strings.Contains(out, "voters 5, quorum 3") {
		t.Errorf("regent members list = %d:\n%s\nwant voters 5, quorum 3", code, out)
	}
	// Two masters may now fail.
	l := waitLeader(t, c, 30*time.Second)
	for _, f := range followers(c, l)[:2] {
		if err := f.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	load.WaitAcks(5, 30*time.Second, "writes with two of five stopped")
	startAll(t, c)
	load.Stop()
	l = waitLeader(t, c, 60*time.Second)
	mustPut(t, c, l, acked, "after", 2, 20*time.Second)
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, l, acked)
	waitSameRegistryOf(t, all, 60*time.Second)
	compareReplicasOffline(t, c, all)
}

// TestOpsShrinkFiveToThree follows the guide: stop two masters for good,
// run the three with --quorum=3 and the three-host list, then restart them
// with --quorum=2. A removed master that returns with its old disk is
// refused and never counted.
func TestOpsShrinkFiveToThree(t *testing.T) {
	c := newTestCluster(t, 5, 3)
	startAll(t, c)
	leader := waitLeader(t, c, 90*time.Second)
	all := c.Masters()
	waitVoters(t, leader, peerAddrs(all...), 90*time.Second)
	acked := map[string]float64{}
	mustPut(t, c, leader, acked, "before", 1, 20*time.Second)
	load := startLoad(t, c, "shrink", nil)
	load.WaitAcks(5, 30*time.Second, "writes before the procedure")

	// Step 2: remove two masters (not the leader) and make sure they stay
	// down.
	fs := followers(c, leader)
	gone := fs[2:4]
	keep := []*localMaster{leader, fs[0], fs[1]}
	for _, m := range gone {
		if err := m.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	load.WaitAcks(3, 30*time.Second, "writes with two masters gone (3 of 5, quorum 3)")
	three := mastersFlag(keep...)
	// The three run with --quorum=3 and the three-host list: restart them
	// one at a time; the leader removes the two from the membership.
	for _, m := range []*localMaster{fs[0], fs[1], leader} {
		restartWith(t, c, m, "--quorum=3", three)
		waitLeader(t, c, 60*time.Second)
	}
	waitVoters(t, keep[0], peerAddrs(keep...), 60*time.Second)
	load.WaitAcks(3, 60*time.Second, "writes with three masters at quorum 3")
	// Step 3: restart them with --quorum=2.
	for _, m := range keep {
		restartWith(t, c, m, "--quorum=2", three)
		waitLeader(t, c, 60*time.Second)
		load.WaitAcks(3, 60*time.Second, "writes after restarting "+m.Name+" with --quorum=2")
	}
	ms := waitVoters(t, keep[0], peerAddrs(keep...), 60*time.Second)
	if ms.Quorum != 2 || ms.Voters != 3 {
		t.Errorf("after shrinking: %d voters, quorum %d; want 3 and 2", ms.Voters, ms.Quorum)
	}
	// One of three may now fail.
	l := waitLeader(t, c, 30*time.Second)
	f := followers(c, l)
	f = slices.DeleteFunc(f, func(m *localMaster) bool { return slices.Contains(gone, m) })
	if err := f[0].Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	load.WaitAcks(3, 30*time.Second, "writes with one of three stopped")
	if err := c.Start(f[0]); err != nil {
		t.Fatal(err)
	}

	// A removed master returns with its old disk and its old configuration:
	// the three refuse it (MESOS-1546's whitelist) and it never counts.
	ghost := gone[0]
	ghost.Args = nil // its old files: five masters, quorum 3
	if err := c.Start(ghost); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, ghost, 30*time.Second, "refused by peer", "masters list")
	load.WaitAcks(3, 30*time.Second, "writes with the removed master back")
	ms = waitVoters(t, keep[0], peerAddrs(keep...), 30*time.Second)
	for _, x := range ms.Members {
		if x.Address == ghost.PeerAddr() && x.Member {
			t.Errorf("the removed master %s is a member again: %+v", ghost.Name, x)
		}
	}
	if st, ok := replogStatus(t, ghost); ok && st.Role == "coordinator" {
		t.Errorf("the removed master coordinates: %+v", st)
	}
	if err := ghost.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	load.Stop()
	l = waitLeader(t, c, 60*time.Second)
	mustPut(t, c, l, acked, "after", 2, 20*time.Second)
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, l, acked)
	waitSameRegistryOf(t, keep, 60*time.Second)
	compareReplicasOffline(t, c, keep)
}

// TestOpsReplaceMaster stops a follower, deletes its replicated_log and
// starts it again: it comes back EMPTY with a new ReplicaID, catches up
// while the leader keeps writing, and votes; the leader is never demoted.
func TestOpsReplaceMaster(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	acked := map[string]float64{}
	for i := range 50 {
		mustPut(t, c, leader, acked, fmt.Sprintf("bulk-%03d", i), float64(i+1), 20*time.Second)
	}
	before, _ := replogStatus(t, leader)
	load := startLoad(t, c, "replace", func() []*localMaster { return []*localMaster{leader} })
	load.WaitAcks(5, 30*time.Second, "writes before the procedure")

	victim := followers(c, leader)[0]
	oldSt, _ := replogStatus(t, victim)
	if err := victim.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(victim.WorkDir, ReplicatedLogDir)); err != nil {
		t.Fatal(err)
	}
	load.WaitAcks(5, 30*time.Second, "writes with the victim down")
	if err := c.Start(victim); err != nil {
		t.Fatal(err)
	}
	// It comes back EMPTY with a new ReplicaID; the leader removes the old
	// one and adds the new one, a voter once caught up.
	var newSt statusJSON
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if st, ok := replogStatus(t, victim); ok {
			newSt = st
			break
		}
	}
	if newSt.Replica == 0 || newSt.Replica == oldSt.Replica {
		t.Fatalf("the wiped replica answers as replica %d, old %d; want a new ReplicaID", newSt.Replica, oldSt.Replica)
	}
	t.Logf("replaced replica %d by %d, first seen %s", oldSt.Replica, newSt.Replica, newSt.Status)
	voter := false
	for end := time.Now().Add(60 * time.Second); !voter && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		ms := waitVoters(t, leader, peerAddrs(c.Masters()...), 60*time.Second)
		voter = slices.ContainsFunc(ms.Members, func(x memberJSON) bool { return x.Replica == newSt.Replica && x.Voter })
	}
	if !voter {
		t.Fatalf("the new replica %d never became a voter", newSt.Replica)
	}
	load.WaitAcks(5, 30*time.Second, "writes after the replacement")
	load.Stop()
	after, _ := replogStatus(t, leader)
	if after.Role != "coordinator" || after.Replica != before.Replica {
		t.Errorf("the leader changed during the replacement: before replica %d, after %d %s", before.Replica, after.Replica, after.Role)
	}
	if logsContain(leader, "lost leadership") {
		t.Errorf("the leader logged a lost leadership during the replacement")
	}
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, victim, acked)
	waitSameRegistryOf(t, c.Masters(), 60*time.Second)
	compareReplicasOffline(t, c, c.Masters())
}

// TestOpsOneToThree does better than the guide, which wipes the log: stop
// the standalone master, restart it with the three-host list and
// --quorum=2, start the two new ones: every registry entry written before is
// still there.
func TestOpsOneToThree(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	startAll(t, c)
	solo := waitLeader(t, c, 60*time.Second)
	acked := map[string]float64{}
	for i := range 20 {
		mustPut(t, c, solo, acked, fmt.Sprintf("solo-%02d", i), float64(i+1), 20*time.Second)
	}
	if err := solo.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	newMs, err := c.Add(2, 2)
	if err != nil {
		t.Fatal(err)
	}
	all := c.Masters()
	three := mastersFlag(all...)
	solo.Args = []string{"--quorum=2", three}
	if err := c.Start(solo); err != nil {
		t.Fatal(err)
	}
	for _, m := range newMs {
		m.Args = []string{"--quorum=2", three}
		if err := c.Start(m); err != nil {
			t.Fatal(err)
		}
	}
	l := waitLeader(t, c, 90*time.Second)
	load := startLoad(t, c, "three", nil)
	ms := waitVoters(t, l, peerAddrs(all...), 90*time.Second)
	if ms.Quorum != 2 {
		t.Errorf("quorum %d after one to three, want 2", ms.Quorum)
	}
	load.WaitAcks(5, 30*time.Second, "writes with three masters")
	load.Stop()
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, newMs[1], acked)
	waitSameRegistryOf(t, all, 60*time.Second)
	compareReplicasOffline(t, c, all)
}

// TestOpsWhitelist enforces the guide's warning: new masters started before
// the old ones run with the new quorum and list are refused and told what to
// do; a fourth master against --quorum=2 does not start (exit 78); a master
// of another cluster is refused. None of them is ever counted in a quorum,
// and nothing diverges.
func TestOpsWhitelist(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	old := c.Masters()
	acked := map[string]float64{}
	mustPut(t, c, leader, acked, "before", 1, 20*time.Second)
	// The client writes through the three masters of the cluster, except
	// while one of them is replaced by a stranger (a master of another
	// cluster leads its own log: what it acknowledges is not ours).
	var targetsMu sync.Mutex
	targets := slices.Clone(old)
	setTargets := func(ms []*localMaster) {
		targetsMu.Lock()
		defer targetsMu.Unlock()
		targets = ms
	}
	load := startLoad(t, c, "wl", func() []*localMaster {
		targetsMu.Lock()
		defer targetsMu.Unlock()
		return targets
	})
	load.WaitAcks(5, 30*time.Second, "writes before")

	t.Run("NewMastersBeforeOldOnes", func(t *testing.T) {
		newMs, err := c.Add(2, 3)
		if err != nil {
			t.Fatal(err)
		}
		five := mastersFlag(c.Masters()...)
		for _, m := range newMs {
			m.Args = []string{"--quorum=3", five}
			if err := c.Start(m); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range newMs {
			waitLogs(t, m, 30*time.Second, "refused by peer", "not in the masters list", "regent members add")
		}
		// regent status on the early master reports the refusal and what
		// to do.
		var out string
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if out = statusOut(t, c, newMs[0]); strings.Contains(out, "refuses this master") {
				break
			}
		}
		for _, want := range []string{"EMPTY", "listed (refuses this master)", "refused by peer: replica", "is not in the masters list", "regent members add"} {
			if !strings.Contains(out, want) {
				t.Errorf("regent status on the early master lacks %q:\n%s", want, out)
			}
		}
		load.WaitAcks(5, 30*time.Second, "writes with the early masters refused")
		for _, m := range newMs {
			st, ok := replogStatus(t, m)
			if !ok || st.Status == "VOTING" || st.Role == "coordinator" {
				t.Errorf("early master %s: %+v, want not VOTING", m.Name, st)
			}
			if err := m.Stop(20 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		waitVoters(t, leader, peerAddrs(old...), 10*time.Second)
	})

	t.Run("FourthMasterAgainstQuorumTwo", func(t *testing.T) {
		extra, err := c.Add(1, 2)
		if err != nil {
			t.Fatal(err)
		}
		m := extra[0]
		m.Args = []string{"--quorum=2", mastersFlag(append(slices.Clone(old), m)...)}
		code, out, errOut := runRegent(t, c, append([]string{"config", "validate", "-config", m.Config}, m.Args...)...)
		if code != ExitConfig || !strings.Contains(out+errOut, "More masters than the quorum allows") {
			t.Errorf("regent config validate with four masters and --quorum=2 = %d, want %d naming the problem", code, ExitConfig)
		}
		if err := c.Start(m); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = m.Wait(ctx)
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != ExitConfig {
			t.Errorf("a fourth master against --quorum=2 exited with %v, want exit code %d", err, ExitConfig)
		}
		if !logsContain(m, "More masters than the quorum allows") {
			t.Errorf("the fourth master's logs do not say why:\n%s", strings.Join(m.Logs(), "\n"))
		}
	})

	t.Run("AnotherCluster", func(t *testing.T) {
		// A master of another cluster, listed under the address of one of
		// ours: another log's disk in m3's work_dir.
		other := newTestCluster(t, 1, 1)
		other.Cluster = "e2e"
		startAll(t, other)
		om := waitLeader(t, other, 60*time.Second)
		if !putWeight(t, other, om, "foreign", 7, 20*time.Second) {
			t.Fatal("write to the other cluster not acknowledged")
		}
		if err := om.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		victim := followers(c, leader)[1]
		setTargets(slices.DeleteFunc(slices.Clone(old), func(m *localMaster) bool { return m == victim }))
		defer setTargets(old)
		if err := victim.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		saved := filepath.Join(t.TempDir(), "saved")
		dir := filepath.Join(victim.WorkDir, ReplicatedLogDir)
		if err := os.Rename(dir, saved); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(om.WorkDir, ReplicatedLogDir), dir); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(victim); err != nil {
			t.Fatal(err)
		}
		waitLogs(t, victim, 30*time.Second, "refused", "cluster")
		load.WaitAcks(5, 30*time.Second, "writes with the stranger running")
		st, _ := replogStatus(t, leader)
		if st.Reachable != 2 {
			t.Errorf("leader reaches %d voters with the stranger in m3's place, want 2 (the stranger is never counted)", st.Reachable)
		}
		if err := victim.Stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(saved, dir); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(victim); err != nil {
			t.Fatal(err)
		}
	})

	load.Stop()
	l := waitLeader(t, c, 60*time.Second)
	mustPut(t, c, l, acked, "after", 2, 20*time.Second)
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, l, acked)
	if got := weights(t, c, l); got["foreign"] != 0 {
		t.Errorf("the other cluster's weight leaked into ours: %v", got["foreign"])
	}
	waitSameRegistryOf(t, old, 60*time.Second)
	compareReplicasOffline(t, c, old)
}

// TestOpsOnlineMembers changes the voters at runtime while clients write
// (MESOS-683): "regent members remove" a master, then "regent members add"
// a new one, which joins as a non-voter, catches up and becomes a voter;
// the quorum follows, and "regent status" shows each step.
func TestOpsOnlineMembers(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	orig := c.Masters()
	waitVoters(t, leader, peerAddrs(orig...), 30*time.Second)
	acked := map[string]float64{}
	mustPut(t, c, leader, acked, "before", 1, 20*time.Second)
	load := startLoad(t, c, "online", nil)
	load.WaitAcks(5, 30*time.Second, "writes before")
	fs := followers(c, leader)
	victim, stay := fs[1], fs[0]

	code, out, _ := runRegent(t, c, "members", "list", "-address", stay.APIURL())
	if code != 0 || !strings.Contains(out, "voters 3, quorum 2") || strings.Count(out, "voter") < 3 {
		t.Errorf("members list = %d:\n%s", code, out)
	}
	// A fourth voter would exceed 2*quorum-1 = 3: refused with the reason.
	code, _, errOut := runRegent(t, c, "members", "add", "-address", stay.APIURL(), "127.0.0.1:1")
	if code == 0 || !strings.Contains(errOut, "2*quorum-1") {
		t.Errorf("members add of a fourth = %d %q, want a refusal naming 2*quorum-1", code, errOut)
	}
	// The leader cannot remove itself.
	code, _, errOut = runRegent(t, c, "members", "remove", "-address", stay.APIURL(), leader.PeerAddr())
	if code == 0 || !strings.Contains(errOut, "leader") {
		t.Errorf("members remove of the leader = %d %q, want a refusal", code, errOut)
	}

	// Remove the victim, through a follower (307 to the leader).
	code, out, _ = runRegent(t, c, "members", "remove", "-address", stay.APIURL(), "-wait", "60s", victim.PeerAddr())
	if code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("members remove = %d:\n%s", code, out)
	}
	load.WaitAcks(5, 30*time.Second, "writes after the removal")
	ms := waitVoters(t, leader, peerAddrs(leader, stay), 30*time.Second)
	if ms.Voters != 2 || ms.Quorum != 2 {
		t.Errorf("after the removal: %d voters, quorum %d; want 2, 2", ms.Voters, ms.Quorum)
	}
	if err := victim.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Add a new master whose own list names the two and itself.
	added, err := c.Add(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	nm := added[0]
	if err := c.Reconfigure(nm, 2, peerAddrs(leader, stay, nm)); err != nil {
		t.Fatal(err)
	}
	// The operator runs "regent members add -wait" and watches "regent
	// status" on the new host; the new master starts a moment later.
	addCmd := exec.Command(c.Binary, "members", "add", "-address", stay.APIURL(), "-wait", "90s", nm.PeerAddr())
	var addOut, addErr bytes.Buffer
	addCmd.Stdout, addCmd.Stderr = &addOut, &addErr
	if err := addCmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	note := func(out string) string {
		for line := range strings.Lines(out) {
			if !strings.Contains(line, nm.PeerAddr()+" ") {
				continue
			}
			for _, st := range []string{"listed (not connected)", "listed (connected, joining)", "non-voter (catching up)",
				"non-voter (caught up, promotion next)", "voter"} {
				if strings.HasSuffix(strings.TrimSpace(line), st) {
					if len(seen) == 0 || seen[len(seen)-1] != st {
						seen = append(seen, st)
					}
					return st
				}
			}
		}
		return ""
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && note(statusOut(t, c, leader)) == ""; time.Sleep(50 * time.Millisecond) {
	}
	if err := c.Start(nm); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if note(statusOut(t, c, nm)) == "voter" {
			break
		}
	}
	t.Logf("regent status showed the new master as: %s", strings.Join(seen, " -> "))
	if len(seen) < 2 || seen[0] != "listed (not connected)" || seen[len(seen)-1] != "voter" {
		t.Errorf("regent status showed %q, want it listed first and a voter last", seen)
	}
	if err := addCmd.Wait(); err != nil || !strings.Contains(addOut.String(), "done: a voter") {
		t.Fatalf("regent members add -wait: %v\n%s%s", err, addOut.String(), addErr.String())
	}
	t.Logf("$ regent members add -address %s -wait 90s %s\n%s", stay.APIURL(), nm.PeerAddr(), addOut.String())
	if !strings.Contains(addOut.String(), "listed") && !strings.Contains(addOut.String(), "non-voter") {
		t.Errorf("members add -wait showed no step before the promotion:\n%s", addOut.String())
	}
	// Adding it again is refused: it is listed already.
	if code, _, errOut := runRegent(t, c, "members", "add", "-address", leader.APIURL(), nm.PeerAddr()); code != 1 || !strings.Contains(errOut, "already in the masters list") {
		t.Errorf("a second members add = %d %q, want a refusal", code, errOut)
	}
	load.WaitAcks(5, 30*time.Second, "writes after the addition")
	final := []*localMaster{leader, stay, nm}
	ms = waitVoters(t, leader, peerAddrs(final...), 30*time.Second)
	if ms.Voters != 3 || ms.Quorum != 2 {
		t.Errorf("after the addition: %d voters, quorum %d; want 3, 2", ms.Voters, ms.Quorum)
	}

	// regent status shows the cluster: the local supervisor and the leader's
	// view of every member.
	for _, args := range [][]string{{"status", "-config", nm.Config}, {"status", "-config", nm.Config, "-address", leader.APIURL()}} {
		code, out, _ = runRegent(t, c, args...)
		for _, want := range []string{"supervisor:", "leader:", "quorum:      2 of 3 voters", nm.PeerAddr(), "VOTING"} {
			if !strings.Contains(out, want) {
				t.Errorf("regent %v (exit %d) lacks %q:\n%s", args, code, want, out)
			}
		}
		if strings.Contains(out, victim.PeerAddr()) {
			t.Errorf("regent %v still lists the removed master:\n%s", args, out)
		}
	}
	code, out, _ = runRegent(t, c, "members", "list", "-json", "-address", nm.APIURL())
	var lj membersJSON
	if err := json.Unmarshal([]byte(out), &lj); code != 0 || err != nil || lj.Voters != 3 || len(lj.Members) != 3 {
		t.Errorf("regent members list -json = %d %v: %+v", code, err, lj)
	}

	// The leader fails before the files were updated: the next leader's
	// list names the removed master and not the new one. It keeps the new
	// voter (connected) and does not bring back the removed one (stopped).
	if err := leader.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	next := waitLeader(t, c, 60*time.Second)
	t.Logf("failover from %s to %s (masters list %v)", leader.Name, next.Name, next.Masters)
	load.WaitAcks(5, 30*time.Second, "writes after the failover")
	// For two seconds (many reconcile periods), every look at the new
	// leader's members shows the new master a voter and the removed one
	// absent.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r := doLeader(t, c, next, http.MethodGet, "/replog/members", "", "", 10*time.Second)
		var fm membersJSON
		if err := json.Unmarshal(r.Body, &fm); r.Code != http.StatusOK || err != nil {
			t.Fatalf("GET /replog/members after the failover = %d %s", r.Code, r.Body)
		}
		for _, x := range fm.Members {
			if (x.Address == nm.PeerAddr() && !(x.Member && x.Voter)) || (x.Address == victim.PeerAddr() && x.Member) {
				t.Fatalf("after the failover to %s the runtime change was undone: %+v", next.Name, fm.Members)
			}
		}
	}
	if err := c.Start(leader); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c, 60*time.Second)
	ms = waitVoters(t, stay, peerAddrs(final...), 60*time.Second)
	for _, x := range ms.Members {
		// A leader whose file still lists the removed master may show it as
		// listed; it must not be a member again.
		if x.Address == victim.PeerAddr() && x.Member {
			t.Errorf("the removed master is back after a failover: %+v", x)
		}
	}
	load.Stop()
	mustPut(t, c, leader, acked, "after", 2, 20*time.Second)
	for k, v := range load.Acked() {
		acked[k] = v
	}
	checkAcked(t, c, nm, acked)
	waitSameRegistryOf(t, final, 60*time.Second)
	compareReplicasOffline(t, c, final)
}

// TestOpsExternalAccess puts each master behind a TCP forwarder on another
// loopback address (its "public" address) and starts it with
// --advertise_ip/--advertise_port (and --hostname) naming the forwarder:
// /state and redirects name the advertised address, and a client that can
// reach only the forwarders works.
func TestOpsExternalAccess(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	fwd := map[*localMaster]*forwarder{}
	for _, m := range c.Masters() {
		f := startForwarder(t, "127.0.0.2:0", "127.0.0.1:"+strconv.Itoa(m.APIPort))
		fwd[m] = f
		// Only the API is behind the forwarder: the replicas keep talking on
		// the peer addresses of the masters list (127.0.0.1), which
		// advertise_ip does not move.
		m.Args = []string{"--advertise_ip=127.0.0.2", "--advertise_port=" + strconv.Itoa(f.Addr().Port), "--hostname=127.0.0.2"}
	}
	startAll(t, c)
	public := func(m *localMaster) string { return "http://" + fwd[m].Addr().String() }

	// Find the leader through the forwarders only.
	var leader *localMaster
	for end := time.Now().Add(60 * time.Second); leader == nil && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, m := range c.Masters() {
			if r := do(t, http.MethodGet, public(m)+"/master/state", "", ""); r.Code == http.StatusOK {
				leader = m
			}
		}
	}
	if leader == nil {
		t.Fatal("no master answered /master/state through its forwarder")
	}
	r := do(t, http.MethodGet, public(leader)+"/master/state", "", "")
	var st struct {
		LeaderInfo struct {
			Hostname string `json:"hostname"`
			Port     int    `json:"port"`
			Address  struct {
				IP   string `json:"ip"`
				Port int    `json:"port"`
			} `json:"address"`
		} `json:"leader_info"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("decode /master/state: %v", err)
	}
	lp := fwd[leader].Addr().Port
	if st.LeaderInfo.Address.IP != "127.0.0.2" || st.LeaderInfo.Port != lp || st.LeaderInfo.Address.Port != lp {
		t.Errorf("leader_info = %+v, want the advertised 127.0.0.2:%d", st.LeaderInfo, lp)
	}
	want := "//127.0.0.2:" + strconv.Itoa(lp) + "/master/state"
	for _, f := range followers(c, leader) {
		var r httpResult
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if r = do(t, http.MethodGet, public(f)+"/master/state", "", ""); r.Code == http.StatusTemporaryRedirect {
				break
			}
		}
		if r.Code != http.StatusTemporaryRedirect || r.Header.Get("Location") != want {
			t.Errorf("GET /master/state via %s's forwarder = %d Location %q, want 307 %q", f.Name, r.Code, r.Header.Get("Location"), want)
		}
	}
	// A client that reaches only the forwarders: writes through a
	// follower's public address follow the redirect to the leader's.
	f := followers(c, leader)[0]
	acked := map[string]float64{}
	for i := range 10 {
		role := fmt.Sprintf("ext-%02d", i)
		ok := false
		for end := time.Now().Add(20 * time.Second); !ok && time.Now().Before(end); {
			ok = putOnce(public(f), role, float64(i+1))
			if !ok {
				time.Sleep(50 * time.Millisecond) // polling the cluster
			}
		}
		if !ok {
			t.Fatalf("write %s through %s's forwarder not acknowledged", role, f.Name)
		}
		acked[role] = float64(i + 1)
	}
	r = do(t, http.MethodGet, public(f)+"/master/weights", "", "")
	if r.Code == http.StatusTemporaryRedirect {
		r = do(t, http.MethodGet, "http:"+r.Header.Get("Location"), "", "")
	}
	var ws []struct {
		Role   string  `json:"role"`
		Weight float64 `json:"weight"`
	}
	if err := json.Unmarshal(r.Body, &ws); err != nil {
		t.Fatalf("decode weights %s: %v", r.Body, err)
	}
	got := map[string]float64{}
	for _, w := range ws {
		got[w.Role] = w.Weight
	}
	for role, w := range acked {
		if got[role] != w {
			t.Errorf("weight %s = %g through the forwarders, want %g", role, got[role], w)
		}
	}
	// The admin commands work through a forwarder too.
	code, out, _ := runRegent(t, c, "members", "list", "-address", public(f))
	if code != 0 || !strings.Contains(out, "voters 3, quorum 2") {
		t.Errorf("members list through the forwarder = %d:\n%s", code, out)
	}
	waitSameRegistryOf(t, c.Masters(), 60*time.Second)
	compareReplicasOffline(t, c, c.Masters())
}
