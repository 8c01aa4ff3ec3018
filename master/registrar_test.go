package master

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

// batches decodes the batch entries of es.
func batches(t *testing.T, es []Entry) []*batch {
	t.Helper()
	var out []*batch
	for _, e := range es {
		if e.Kind != EntryAppend {
			continue
		}
		b, err := decodeBatch(e.Data)
		if err != nil {
			t.Fatalf("position %d: %v", e.Position, err)
		}
		out = append(out, b)
	}
	return out
}

func registryJSON(t *testing.T, r *Registry) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (tm *testMaster) registryJSON(t *testing.T) string {
	var s string
	tm.reg.view(func(r *Registry) { s = registryJSON(t, r) })
	return s
}

// replay applies every batch in es (ignoring snapshots) to an empty registry.
func replay(t *testing.T, es []Entry) *Registry {
	t.Helper()
	r := &Registry{}
	for _, b := range batches(t, es) {
		for i := range b.Ops {
			_ = r.apply(&b.Ops[i], b.Time)
		}
	}
	return r
}

func TestRegistrarBatchesQueuedOperationsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.MaxInFlight = 1 })
		settle()
		release := m.log.holdAppends()
		const n = 20
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				codes[i] = m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%02d","weight":%d}]`, i, i+1)).Code
			})
			synctest.Wait() // queued (or in flight) before the next one
		}
		if q := m.reg.queued.Load(); q != n-1 {
			t.Errorf("queued operations = %d, want %d (one batch in flight)", q, n-1)
		}
		release()
		wg.Wait()
		for i, code := range codes {
			if code != 200 {
				t.Errorf("request %d = %d", i, code)
			}
		}
		bs := batches(t, c.learned())
		var sizes []int
		var roles []string
		for _, b := range bs[1:] { // bs[0] is the leader record
			sizes = append(sizes, len(b.Ops))
			for _, op := range b.Ops {
				roles = append(roles, op.WeightInfos[0].Role)
			}
		}
		if diff := cmp.Diff([]int{1, n - 1}, sizes); diff != "" {
			t.Errorf("batch sizes (-want +got):\n%s", diff)
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("r%02d", i))
		}
		if diff := cmp.Diff(want, roles); diff != "" {
			t.Errorf("operation order (-want +got):\n%s", diff)
		}
		var got []string
		m.reg.view(func(r *Registry) {
			for _, w := range r.Weights {
				got = append(got, w.Info.Role)
			}
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("registry weights order (-want +got):\n%s", diff)
		}
	})
}

func TestRegistrarKeepsSeveralBatchesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.MaxInFlight = 4 })
		settle()
		release := m.log.holdAppends()
		base := m.log.appends
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() { m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%d","weight":1}]`, i)) })
			synctest.Wait()
		}
		m.log.mu.Lock()
		inFlight := m.log.appends - base
		m.log.mu.Unlock()
		if inFlight != 4 {
			t.Errorf("appends in flight = %d, want 4 (MaxInFlight)", inFlight)
		}
		release()
		wg.Wait()
	})
}

func TestRegistrarSnapshotTruncateRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.SnapshotEntries = 4 })
		settle()
		for i := range 15 {
			rec := m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%d","weight":%d}]`, i%5, i+1))
			if rec.Code != 200 {
				t.Fatalf("write %d = %d %s", i, rec.Code, rec.Body.String())
			}
			if i == 7 {
				m.do("POST", "/maintenance/schedule", `{"windows":[{"machine_ids":[{"hostname":"h"}],"unavailability":{"start":{"nanoseconds":1}}}]}`)
			}
		}
		want := m.registryJSON(t)
		begin, _ := c.bounds()
		if begin == 0 {
			t.Fatal("log never truncated")
		}
		var snaps int
		for _, e := range c.all() {
			if e.Kind == EntrySnapshot {
				snaps++
				// The snapshot equals the replay of every batch below it.
				got, err := decodeSnapshot(e.Data)
				if err != nil {
					t.Fatal(err)
				}
				var below []Entry
				for _, h := range c.all() {
					if h.Position < e.Position {
						below = append(below, h)
					}
				}
				if diff := cmp.Diff(registryJSON(t, replay(t, below)), registryJSON(t, got)); diff != "" {
					t.Fatalf("snapshot at %d differs from replay (-replay +snapshot):\n%s", e.Position, diff)
				}
			}
		}
		if snaps < 2 {
			t.Errorf("snapshots = %d, want at least 2", snaps)
		}
		if first := c.learned()[0]; first.Kind != EntrySnapshot || first.Position != begin {
			t.Errorf("first retained entry = %v at %d, want the snapshot at %d", first.Kind, first.Position, begin)
		}
		// Full replay of the history reaches the same registry.
		if diff := cmp.Diff(want, registryJSON(t, replay(t, c.all()))); diff != "" {
			t.Errorf("replay differs (-leader +replay):\n%s", diff)
		}
		// A new master recovers from the snapshot plus the rest.
		f := startMaster(t, c, 5051, nil)
		settle()
		if diff := cmp.Diff(want, f.registryJSON(t)); diff != "" {
			t.Errorf("recovered registry differs (-leader +follower):\n%s", diff)
		}
	})
}

func TestFailoverKeepsRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		a := startMaster(t, c, 5050, nil)
		settle()
		b := startMaster(t, c, 5051, nil)
		settle()
		if rec := a.do("PUT", "/weights", `[{"role":"dev","weight":4}]`); rec.Code != 200 {
			t.Fatalf("write = %d", rec.Code)
		}
		c.depose()
		settle()
		if done, _ := a.exited(); !done {
			t.Fatal("old leader still running")
		}
		if !b.isLeading() {
			t.Fatalf("b not leading: %s", b.heartbeat())
		}
		if rec := b.do("GET", "/weights", ""); rec.Body.String() != `[{"role":"dev","weight":4}]` {
			t.Errorf("weights on new leader = %s", rec.Body.String())
		}
		var id string
		b.reg.view(func(r *Registry) { id = r.Master.Info.ID })
		if id != "master-5051" {
			t.Errorf("registry leader = %s", id)
		}
	})
}

// TestApplyDeterministic applies random operation sequences to two
// registries decoded from the same entries and checks they agree, op by op.
func TestApplyDeterministic(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var ops []Operation
		hosts := []MachineID{{Hostname: "a"}, {Hostname: "b", IP: "10.0.0.2"}, {IP: "10.0.0.3"}}
		pick := func() []MachineID {
			var ids []MachineID
			for _, h := range hosts {
				if rng.IntN(2) == 0 {
					ids = append(ids, h)
				}
			}
			return ids
		}
		for range 40 {
			switch rng.IntN(7) {
			case 0:
				s := Schedule{}
				if ids := pick(); len(ids) > 0 {
					s.Windows = []Window{{MachineIDs: ids, Unavailability: Unavailability{Start: TimeInfo{Nanoseconds: rng.Int64()}}}}
				}
				ops = append(ops, Operation{Type: OpUpdateSchedule, Schedule: &s})
			case 1:
				ops = append(ops, Operation{Type: OpStartMaintenance, Machines: pick()})
			case 2:
				ops = append(ops, Operation{Type: OpStopMaintenance, Machines: pick()})
			case 3:
				ops = append(ops, Operation{Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: fmt.Sprint("q", rng.IntN(3)), Limits: map[string]Scalar{"cpus": {float64(rng.IntN(3))}}}}})
			case 4:
				ops = append(ops, Operation{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: fmt.Sprint("w", rng.IntN(3)), Weight: float64(rng.IntN(3))}}})
			case 5:
				ops = append(ops, Operation{Type: OpAdmitSlave, SlaveInfo: &SlaveInfo{Hostname: "h", ID: SlaveID{fmt.Sprint("s", rng.IntN(3))}}})
			case 6:
				types := []OpType{OpMarkSlaveUnreachable, OpMarkSlaveGone, OpRemoveSlave, OpDrainAgent, OpDeactivateAgent, OpReactivateAgent, OpMarkAgentDrained}
				ops = append(ops, Operation{Type: types[rng.IntN(len(types))], SlaveID: fmt.Sprint("s", rng.IntN(3))})
			}
		}
		data, err := encodeBatch(&batch{Version: batchVersion, Time: 42, Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		r1, r2 := &Registry{}, &Registry{}
		for _, r := range []*Registry{r1, r2} {
			b, err := decodeBatch(data)
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.Ops {
				before := registryJSON(t, r)
				err := r.apply(&b.Ops[i], b.Time)
				if err != nil && registryJSON(t, r) != before {
					t.Fatalf("seed %d op %d (%v) failed with %v but changed the registry", seed, i, b.Ops[i].Type, err)
				}
			}
		}
		if diff := cmp.Diff(registryJSON(t, r1), registryJSON(t, r2)); diff != "" {
			t.Fatalf("seed %d: registries differ:\n%s", seed, diff)
		}
		snap, err := encodeSnapshot(r1)
		if err != nil {
			t.Fatal(err)
		}
		r3, err := decodeSnapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r1, r3); diff != "" {
			t.Fatalf("seed %d: snapshot round trip differs (-applied +snapshot):\n%s", seed, diff)
		}
	}
}

func TestRegistrarConcurrentWritersWithSnapshots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.SnapshotEntries = 4; cfg.MaxInFlight = 3 })
		settle()
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 30 {
					if rec := m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%d","weight":%d}]`, g, i+1)); rec.Code != 200 {
						t.Errorf("writer %d write %d = %d %s", g, i, rec.Code, rec.Body.String())
						return
					}
				}
			})
		}
		wg.Wait()
		want := m.registryJSON(t)
		if diff := cmp.Diff(want, registryJSON(t, replay(t, c.all()))); diff != "" {
			t.Errorf("replay differs (-leader +replay):\n%s", diff)
		}
		for g := range 16 {
			var w float64
			m.reg.view(func(r *Registry) {
				for _, x := range r.Weights {
					if x.Info.Role == fmt.Sprintf("r%d", g) {
						w = x.Info.Weight
					}
				}
			})
			if w != 30 {
				t.Errorf("weight of r%d = %v, want 30 (its last write)", g, w)
			}
		}
	})
}

// TestNewLeaderDoesNotSnapshotBeforeReplay: a master elected while its
// registry lags the log (and already counts enough entries for a snapshot)
// must not snapshot and truncate what it has not applied.
func TestNewLeaderDoesNotSnapshotBeforeReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		for i := range 10 {
			b, _ := encodeBatch(&batch{Version: batchVersion, Proposer: "old", Seq: uint64(i + 1), Ops: []Operation{{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: fmt.Sprint("r", i), Weight: 1}}}}})
			c.appendRaw(EntryAppend, b)
		}
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.SnapshotEntries = 3 })
		// Let the reader apply only part of the log before the election.
		release := m.log.holdReads()
		for _, e := range c.learned()[:5] {
			if err := m.reg.applyEntry(e); err != nil {
				t.Fatal(err)
			}
		}
		settle()
		if !m.isLeading() {
			t.Fatal("not leading")
		}
		for _, e := range c.all() {
			if e.Kind == EntrySnapshot {
				t.Fatalf("snapshot at %d written before the registry replayed the log", e.Position)
			}
		}
		release()
		settle()
		for i := range 4 {
			if rec := m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"n%d","weight":2}]`, i)); rec.Code != 200 {
				t.Fatalf("write = %d", rec.Code)
			}
		}
		if diff := cmp.Diff(registryJSON(t, replay(t, c.all())), m.registryJSON(t)); diff != "" {
			t.Fatalf("registry differs from replay (-replay +leader):\n%s", diff)
		}
		begin, _ := c.bounds()
		if begin == 0 {
			t.Fatal("no snapshot after recovery")
		}
		f := startMaster(t, c, 5051, nil)
		settle()
		if diff := cmp.Diff(m.registryJSON(t), f.registryJSON(t)); diff != "" {
			t.Fatalf("follower recovered from the snapshot differs (-leader +follower):\n%s", diff)
		}
	})
}
