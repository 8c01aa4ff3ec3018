package master

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidation(t *testing.T) {
	t.Parallel()
	down := map[MachineID]MachineMode{{Hostname: "d", IP: "10.0.0.4"}: ModeDown, {Hostname: "r"}: ModeDraining}
	win := func(ids ...MachineID) Window {
		return Window{MachineIDs: ids, Unavailability: Unavailability{Start: TimeInfo{Nanoseconds: 1}}}
	}
	tests := []struct {
		name string
		err  error
		want string // "" = valid
	}{
		{"schedule ok", validateSchedule(&Schedule{Windows: []Window{win(MachineID{Hostname: "d", IP: "10.0.0.4"})}}, down), ""},
		{"schedule empty window", validateSchedule(&Schedule{Windows: []Window{win()}}, nil), "List of machines in the maintenance window is empty"},
		{"schedule duplicate", validateSchedule(&Schedule{Windows: []Window{win(MachineID{Hostname: "a"}), win(MachineID{Hostname: "a"})}}, nil), `Machine '{"hostname":"a"}' appears more than once in the schedule`},
		{"schedule drops down machine", validateSchedule(&Schedule{}, down), `Machine '{"hostname":"d","ip":"10.0.0.4"}' is deactivated and cannot be removed from the schedule`},
		{"schedule bad ip", validateSchedule(&Schedule{Windows: []Window{win(MachineID{IP: "::1"})}}, nil), "Failed to parse IPv4 address '::1'"},
		{"schedule negative duration", validateSchedule(&Schedule{Windows: []Window{{MachineIDs: []MachineID{{Hostname: "a"}}, Unavailability: Unavailability{Duration: &DurationInfo{Nanoseconds: -5}}}}}, nil), "Unavailability 'duration' is negative"},
		{"machines empty", validateMachines(nil), "List of machines is empty"},
		{"machine empty", validateMachine(MachineID{}), "Both 'hostname' and 'ip' for a machine are empty"},
		{"role ok", validateRole("eng/dev"), ""},
		{"role star", validateRole("*"), ""},
		{"role empty", validateRole(""), "Empty role name is invalid"},
		{"role slash", validateRole("/a"), "Role '/a' cannot start with a slash"},
		{"role trailing slash", validateRole("a/"), "Role 'a/' cannot end with a slash"},
		{"role double slash", validateRole("a//b"), "Role 'a//b' cannot contain two adjacent slashes"},
		{"role dot", validateRole("a/./b"), "Role 'a/./b' cannot include '.' as a component"},
		{"role dotdot", validateRole(".."), "Role '..' cannot include '..' as a component"},
		{"role star component", validateRole("a/*"), "Role 'a/*' cannot include '*' as a component"},
		{"role dash", validateRole("a/-b"), "Role component '-b' is invalid because it starts with a dash"},
		{"role space", validateRole("a b"), "Role component 'a b' is invalid because it contains backspace or whitespace"},
		{"weights ok", validateWeights([]WeightInfo{{Role: "a", Weight: 0.5}}), ""},
		{"weights negative", validateWeights([]WeightInfo{{Role: "a", Weight: -1}}), "Failed to validate update weights request JSON for role 'a': Invalid weight '-1': Weights must be positive"},
		{"quota ok", validateQuotaConfigs([]QuotaConfig{{Role: "a", Guarantees: map[string]Scalar{"cpus": {1}}, Limits: map[string]Scalar{"cpus": {2}}}}), ""},
		{"quota no role", validateQuotaConfigs([]QuotaConfig{{}}), "Invalid QuotaConfig: 'QuotaConfig.role' must be set"},
		{"quota star", validateQuotaConfigs([]QuotaConfig{{Role: "*"}}), "Invalid QuotaConfig: Invalid 'QuotaConfig.role': setting quota for the default '*' role is not supported"},
		{"quota negative", validateQuotaConfigs([]QuotaConfig{{Role: "a", Limits: map[string]Scalar{"mem": {-1}}}}), "Invalid QuotaConfig: Invalid limit configuration {'mem': -1}: Negative values not supported"},
		{"quota over limit", validateQuotaConfigs([]QuotaConfig{{Role: "a", Guarantees: map[string]Scalar{"cpus": {3}}, Limits: map[string]Scalar{"cpus": {2}}}}), "Invalid QuotaConfig: 'QuotaConfig.guarantees' {'cpus': 3} is not contained within the 'QuotaConfig.limits' {'cpus': 2}"},
		{"quota duplicate role", validateQuotaConfigs([]QuotaConfig{{Role: "a"}, {Role: "a"}}), "Invalid QuotaConfig: duplicate config for role 'a'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if tt.err != nil {
				got = tt.err.Error()
				var oe *OpError
				if !errors.As(tt.err, &oe) {
					t.Errorf("error %v is not an *OpError", tt.err)
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUpdateScheduleSemantics(t *testing.T) {
	t.Parallel()
	a, b, c := MachineID{Hostname: "a"}, MachineID{Hostname: "b"}, MachineID{Hostname: "c"}
	r := &Registry{}
	sched := func(start int64, ids ...MachineID) *Schedule {
		return &Schedule{Windows: []Window{{MachineIDs: ids, Unavailability: Unavailability{Start: TimeInfo{Nanoseconds: start}}}}}
	}
	mustApply(t, r, Operation{Type: OpUpdateSchedule, Schedule: sched(1, a, b)})
	mustApply(t, r, Operation{Type: OpStartMaintenance, Machines: []MachineID{a}})
	// b leaves the schedule (deleted = UP), c joins (DRAINING), a keeps DOWN
	// with the new unavailability.
	mustApply(t, r, Operation{Type: OpUpdateSchedule, Schedule: sched(7, a, c)})
	want := []Machine{
		{Info: MachineInfo{ID: a, Mode: ModeDown, Unavailability: &Unavailability{Start: TimeInfo{Nanoseconds: 7}}}},
		{Info: MachineInfo{ID: c, Mode: ModeDraining, Unavailability: &Unavailability{Start: TimeInfo{Nanoseconds: 7}}}},
	}
	if diff := cmp.Diff(want, r.Machines.Machines); diff != "" {
		t.Fatalf("machines (-want +got):\n%s", diff)
	}
	// Stopping maintenance on a removes it from the schedule; the window
	// keeps c.
	if err := r.apply(&Operation{Type: OpStopMaintenance, Machines: []MachineID{c}}, 0); err == nil {
		t.Fatal("machine/up of a DRAINING machine succeeded")
	}
	mustApply(t, r, Operation{Type: OpStopMaintenance, Machines: []MachineID{a}})
	if diff := cmp.Diff([]Schedule{*sched(7, c)}, r.Schedules); diff != "" {
		t.Fatalf("schedules (-want +got):\n%s", diff)
	}
	// Emptying the schedule clears every machine that is not DOWN.
	mustApply(t, r, Operation{Type: OpUpdateSchedule, Schedule: &Schedule{}})
	if diff := cmp.Diff(&Registry{}, r); diff != "" {
		t.Fatalf("registry after empty schedule (-want +got):\n%s", diff)
	}
}

func TestUpdateQuotaCapability(t *testing.T) {
	t.Parallel()
	r := &Registry{}
	mustApply(t, r, Operation{Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: "a", Limits: map[string]Scalar{"cpus": {1}}}}})
	if diff := cmp.Diff([]MinimumCapability{{Capability: "QUOTA_V2"}}, r.MinimumCapabilities); diff != "" {
		t.Fatalf("capabilities (-want +got):\n%s", diff)
	}
	mustApply(t, r, Operation{Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: "a"}}})
	if diff := cmp.Diff(&Registry{}, r); diff != "" {
		t.Fatalf("registry after removing quota (-want +got):\n%s", diff)
	}
}

func TestAgentOperations(t *testing.T) {
	t.Parallel()
	r := &Registry{}
	info := &SlaveInfo{Hostname: "h1", ID: SlaveID{"s1"}}
	steps := []struct {
		op      Operation
		now     int64
		wantErr string
	}{
		{Operation{Type: OpAdmitSlave, SlaveInfo: info}, 1, ""},
		{Operation{Type: OpAdmitSlave, SlaveInfo: info}, 2, "Agent already admitted"},
		{Operation{Type: OpDrainAgent, SlaveID: "s1"}, 3, ""},
		{Operation{Type: OpReactivateAgent, SlaveID: "s1"}, 4, "Agent is still in the DRAINING state"},
		{Operation{Type: OpMarkAgentDrained, SlaveID: "s1"}, 5, ""},
		{Operation{Type: OpMarkSlaveUnreachable, SlaveID: "s1"}, 6, ""},
		{Operation{Type: OpMarkSlaveReachable, SlaveInfo: info}, 7, ""},
		{Operation{Type: OpReactivateAgent, SlaveID: "s1"}, 8, ""},
		{Operation{Type: OpReactivateAgent, SlaveID: "s1"}, 9, "Agent is not deactivated"},
		{Operation{Type: OpMarkSlaveGone, SlaveID: "s1"}, 10, ""},
		{Operation{Type: OpMarkSlaveGone, SlaveID: "s1"}, 11, "Agent s1 already marked as gone"},
		{Operation{Type: OpDeactivateAgent, SlaveID: "nope"}, 12, "Unknown agent"},
	}
	for i, s := range steps {
		err := r.apply(&s.op, s.now)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != s.wantErr {
			t.Fatalf("step %d %v: error %q, want %q", i, s.op.Type, got, s.wantErr)
		}
	}
	want := &Registry{Gone: GoneSlaves{Slaves: []GoneSlave{{ID: SlaveID{"s1"}, Timestamp: TimeInfo{Nanoseconds: 10}}}}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("registry (-want +got):\n%s", diff)
	}
}

func TestSnapshotRoundTripAndVersion(t *testing.T) {
	t.Parallel()
	r := &Registry{Weights: []Weight{{Info: WeightInfo{Role: "a", Weight: 2}}}, Master: RegistryMaster{Info: &MasterInfo{ID: "m"}}}
	b, err := encodeSnapshot(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"version":2,"registry":{}}`, `not json`, `{"version":1,"registry":{"weights":"x"}}`} {
		if _, err := decodeSnapshot([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeSnapshot(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	for _, bad := range []string{`{"v":2,"ops":[]}`, `{"v":1,"ops":[{"type":"NOPE"}]}`} {
		if _, err := decodeBatch([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeBatch(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{ID: "m", Port: 5050}, ""},
		{"everything wrong", Config{Port: -1, IP: "nope", RegistryStoreTimeout: -1, Lease: time.Second, LeaseMargin: 2 * time.Second},
			"id: must be set\nport: -1 out of range\nip: \"nope\" is not an IP address\nregistry_store_timeout: -1ns is negative\nlease_margin: 2s must be below lease 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := tt.cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func mustApply(t *testing.T, r *Registry, op Operation) {
	t.Helper()
	if err := r.apply(&op, 0); err != nil {
		t.Fatalf("apply %v: %v", op.Type, err)
	}
}
