package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"unicode/utf8"
)

// OpType is the kind of a registry [Operation].
type OpType int

// Operation types (Mesos's registry operations, b.2).
const (
	OpRecover OpType = iota + 1 // the leader record: sets master.info
	OpUpdateSchedule
	OpStartMaintenance
	OpStopMaintenance
	OpUpdateQuota
	OpUpdateWeights
	OpAdmitSlave
	OpMarkSlaveUnreachable
	OpMarkSlaveReachable
	OpMarkSlaveGone
	OpRemoveSlave
	OpDrainAgent
	OpMarkAgentDrained
	OpDeactivateAgent
	OpReactivateAgent
)

var opNames = map[OpType]string{
	OpRecover:              "RECOVER",
	OpUpdateSchedule:       "UPDATE_SCHEDULE",
	OpStartMaintenance:     "START_MAINTENANCE",
	OpStopMaintenance:      "STOP_MAINTENANCE",
	OpUpdateQuota:          "UPDATE_QUOTA",
	OpUpdateWeights:        "UPDATE_WEIGHTS",
	OpAdmitSlave:           "ADMIT_SLAVE",
	OpMarkSlaveUnreachable: "MARK_SLAVE_UNREACHABLE",
	OpMarkSlaveReachable:   "MARK_SLAVE_REACHABLE",
	OpMarkSlaveGone:        "MARK_SLAVE_GONE",
	OpRemoveSlave:          "REMOVE_SLAVE",
	OpDrainAgent:           "DRAIN_AGENT",
	OpMarkAgentDrained:     "MARK_AGENT_DRAINED",
	OpDeactivateAgent:      "DEACTIVATE_AGENT",
	OpReactivateAgent:      "REACTIVATE_AGENT",
}

// String returns the type's name as written in log entries.
func (t OpType) String() string {
	if s, ok := opNames[t]; ok {
		return s
	}
	return fmt.Sprintf("OpType(%d)", int(t))
}

// MarshalText writes the type's name.
func (t OpType) MarshalText() ([]byte, error) {
	if _, ok := opNames[t]; !ok {
		return nil, fmt.Errorf("marshal operation type %d: unknown", int(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a type's name.
func (t *OpType) UnmarshalText(b []byte) error {
	for k, v := range opNames {
		if v == string(b) {
			*t = k
			return nil
		}
	}
	return fmt.Errorf("unknown operation type %q", b)
}

// Operation is one registry operation: a type and its argument. Operations
// are validated before they are proposed and applied, deterministically,
// after they are learned.
type Operation struct {
	Type         OpType        `json:"type"`
	MasterInfo   *MasterInfo   `json:"master_info,omitempty"`
	Schedule     *Schedule     `json:"schedule,omitempty"`
	Machines     []MachineID   `json:"machines,omitempty"`
	QuotaConfigs []QuotaConfig `json:"quota_configs,omitempty"`
	WeightInfos  []WeightInfo  `json:"weight_infos,omitempty"`
	SlaveInfo    *SlaveInfo    `json:"slave_info,omitempty"`
	SlaveID      string        `json:"slave_id,omitempty"`
	DrainConfig  *DrainConfig  `json:"drain_config,omitempty"`
}

// OpError is an operation the registry refused when applying it; the
// message is Mesos's where Mesos has one.
type OpError struct {
	Msg string
}

// Error returns the message.
func (e *OpError) Error() string { return e.Msg }

func opErrorf(format string, args ...any) error {
	return &OpError{Msg: fmt.Sprintf(format, args...)}
}

// apply performs op on r at time now (unix nanoseconds, written into the
// entry by the proposer). It either changes r completely or, returning an
// error, not at all. It never reads the clock or any other input, so every
// replica applying the same entries reaches the same registry.
func (r *Registry) apply(op *Operation, now int64) error {
	return r.applyIndexed(op, now, nil)
}

// applyIndexed is apply finding weights through ix, which the caller keeps
// across calls (nil: scan). The result is the same either way.
func (r *Registry) applyIndexed(op *Operation, now int64, ix *roleIndex) error {
	defer r.normalize()
	switch op.Type {
	case OpRecover:
		if op.MasterInfo == nil {
			return opErrorf("recover: missing master info")
		}
		mi := *op.MasterInfo
		r.Master.Info = &mi
		return nil
	case OpUpdateSchedule:
		if op.Schedule == nil {
			return opErrorf("update schedule: missing schedule")
		}
		if err := validateSchedule(op.Schedule, r.machineModes()); err != nil {
			return err
		}
		r.updateSchedule(op.Schedule)
		return nil
	case OpStartMaintenance:
		if err := r.validateStartMaintenance(op.Machines); err != nil {
			return err
		}
		for _, id := range op.Machines {
			r.Machines.Machines[r.machine(id)].Info.Mode = ModeDown
		}
		return nil
	case OpStopMaintenance:
		if err := r.validateStopMaintenance(op.Machines); err != nil {
			return err
		}
		r.stopMaintenance(op.Machines)
		return nil
	case OpUpdateQuota:
		if err := validateQuotaConfigs(op.QuotaConfigs); err != nil {
			return err
		}
		r.updateQuota(op.QuotaConfigs)
		return nil
	case OpUpdateWeights:
		if err := validateWeights(op.WeightInfos); err != nil {
			return err
		}
		r.updateWeights(op.WeightInfos, ix)
		return nil
	case OpAdmitSlave, OpMarkSlaveUnreachable, OpMarkSlaveReachable, OpMarkSlaveGone,
		OpRemoveSlave, OpDrainAgent, OpMarkAgentDrained, OpDeactivateAgent, OpReactivateAgent:
		return r.applyAgent(op, now)
	}
	return opErrorf("unknown operation type %d", int(op.Type))
}

// normalize turns empty lists into nil ones, so a registry's JSON (and its
// snapshot round trip) does not depend on how a list became empty.
func (r *Registry) normalize() {
	if len(r.Slaves.Slaves) == 0 {
		r.Slaves.Slaves = nil
	}
	if len(r.Unreachable.Slaves) == 0 {
		r.Unreachable.Slaves = nil
	}
	if len(r.Gone.Slaves) == 0 {
		r.Gone.Slaves = nil
	}
	if len(r.Machines.Machines) == 0 {
		r.Machines.Machines = nil
	}
	if len(r.Schedules) == 0 {
		r.Schedules = nil
	}
	if len(r.QuotaConfigs) == 0 {
		r.QuotaConfigs = nil
	}
	if len(r.Weights) == 0 {
		r.Weights = nil
	}
	if len(r.MinimumCapabilities) == 0 {
		r.MinimumCapabilities = nil
	}
}

// updateSchedule replaces the schedule: machines new to it start DRAINING,
// machines left out are deleted (back UP), the others get their new
// unavailability (Mesos's UpdateSchedule::perform).
func (r *Registry) updateSchedule(s *Schedule) {
	existing := map[MachineID]bool{}
	for _, sc := range r.Schedules {
		for _, w := range sc.Windows {
			for _, id := range w.MachineIDs {
				existing[id] = true
			}
		}
	}
	updated := map[MachineID]Unavailability{}
	for _, w := range s.Windows {
		for _, id := range w.MachineIDs {
			updated[id] = w.Unavailability
		}
	}
	kept := r.Machines.Machines[:0]
	for _, m := range r.Machines.Machines {
		if u, ok := updated[m.Info.ID]; ok {
			u := cloneUnavailability(u)
			m.Info.Unavailability = &u
			kept = append(kept, m)
		}
	}
	r.Machines.Machines = kept
	for _, w := range s.Windows {
		for _, id := range w.MachineIDs {
			if existing[id] || r.machine(id) >= 0 {
				continue
			}
			u := cloneUnavailability(w.Unavailability)
			r.Machines.Machines = append(r.Machines.Machines, Machine{Info: MachineInfo{
				ID: id, Mode: ModeDraining, Unavailability: &u,
			}})
		}
	}
	if len(r.Machines.Machines) == 0 {
		r.Machines.Machines = nil
	}
	r.Schedules = nil
	if len(s.Windows) > 0 {
		r.Schedules = []Schedule{cloneSchedule(*s)}
	}
}

// stopMaintenance deletes the machines (back UP) and removes them from the
// schedule, dropping windows left empty and an empty schedule.
func (r *Registry) stopMaintenance(ids []MachineID) {
	gone := map[MachineID]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	r.Machines.Machines = slices.DeleteFunc(r.Machines.Machines, func(m Machine) bool { return gone[m.Info.ID] })
	if len(r.Machines.Machines) == 0 {
		r.Machines.Machines = nil
	}
	var schedules []Schedule
	for _, sc := range r.Schedules {
		var windows []Window
		for _, w := range sc.Windows {
			w.MachineIDs = slices.DeleteFunc(w.MachineIDs, func(id MachineID) bool { return gone[id] })
			if len(w.MachineIDs) > 0 {
				windows = append(windows, w)
			}
		}
		if len(windows) > 0 {
			schedules = append(schedules, Schedule{Windows: windows})
		}
	}
	r.Schedules = schedules
}

// updateQuota upserts or, for a config with neither guarantees nor limits,
// removes each role's quota, then keeps the QUOTA_V2 minimum capability
// present exactly while quota configs exist.
func (r *Registry) updateQuota(cs []QuotaConfig) {
	for _, c := range cs {
		i := slices.IndexFunc(r.QuotaConfigs, func(q QuotaConfig) bool { return q.Role == c.Role })
		if len(c.Guarantees) == 0 && len(c.Limits) == 0 {
			if i >= 0 {
				r.QuotaConfigs = slices.Delete(r.QuotaConfigs, i, i+1)
			}
			continue
		}
		c = cloneQuotaConfig(c)
		if i >= 0 {
			r.QuotaConfigs[i] = c
		} else {
			r.QuotaConfigs = append(r.QuotaConfigs, c)
		}
	}
	if len(r.QuotaConfigs) == 0 {
		r.QuotaConfigs = nil
	}
	has := slices.IndexFunc(r.MinimumCapabilities, func(m MinimumCapability) bool { return m.Capability == capabilityQuotaV2 })
	switch {
	case len(r.QuotaConfigs) > 0 && has < 0:
		r.MinimumCapabilities = append(r.MinimumCapabilities, MinimumCapability{Capability: capabilityQuotaV2})
	case len(r.QuotaConfigs) == 0 && has >= 0:
		r.MinimumCapabilities = slices.Delete(r.MinimumCapabilities, has, has+1)
		if len(r.MinimumCapabilities) == 0 {
			r.MinimumCapabilities = nil
		}
	}
}

// updateWeights upserts each role's weight (Mesos's UpdateWeights).
func (r *Registry) updateWeights(ws []WeightInfo, ix *roleIndex) {
	for _, w := range ws {
		i := ix.find(r, w.Role)
		if i >= 0 {
			r.Weights[i].Info = w
		} else {
			r.Weights = append(r.Weights, Weight{Info: w})
			ix.added(r, w.Role)
		}
	}
}

// roleIndex maps the roles of one registry's Weights to their positions, so
// an update finds its weight without scanning every role (regent bench
// writes a thousand). It rebuilds itself when used with another registry
// (a snapshot replaced it) or when Weights changed length without it, and
// checks every hit, so it answers as a scan of Weights would. A nil
// *roleIndex scans.
type roleIndex struct {
	reg *Registry // the registry indexed; held, so its address is not reused
	n   int       // len(reg.Weights) when last indexed
	pos map[string]int
}

// find returns the position of role's weight in r.Weights, or -1.
func (x *roleIndex) find(r *Registry, role string) int {
	if x == nil {
		return slices.IndexFunc(r.Weights, func(w Weight) bool { return w.Info.Role == role })
	}
	if x.reg != r || x.n != len(r.Weights) {
		x.rebuild(r)
	}
	i, ok := x.pos[role]
	if ok && r.Weights[i].Info.Role != role {
		x.rebuild(r)
		i, ok = x.pos[role]
	}
	if !ok {
		return -1
	}
	return i
}

// added records that role's weight was appended to r.Weights.
func (x *roleIndex) added(r *Registry, role string) {
	if x == nil {
		return
	}
	if x.reg != r || x.n != len(r.Weights)-1 {
		x.rebuild(r)
		return
	}
	if _, ok := x.pos[role]; !ok {
		x.pos[role] = len(r.Weights) - 1
	}
	x.n = len(r.Weights)
}

// rebuild indexes r from scratch; the first of duplicate roles wins, as in
// a scan.
func (x *roleIndex) rebuild(r *Registry) {
	x.reg, x.n = r, len(r.Weights)
	x.pos = make(map[string]int, len(r.Weights))
	for i, w := range r.Weights {
		if _, ok := x.pos[w.Info.Role]; !ok {
			x.pos[w.Info.Role] = i
		}
	}
}

// applyAgent performs the agent operations.
func (r *Registry) applyAgent(op *Operation, now int64) error {
	id := SlaveID{Value: op.SlaveID}
	admitted := slices.IndexFunc(r.Slaves.Slaves, func(s Slave) bool { return s.Info.ID == id })
	unreach := slices.IndexFunc(r.Unreachable.Slaves, func(s UnreachableSlave) bool { return s.ID == id })
	gone := slices.IndexFunc(r.Gone.Slaves, func(s GoneSlave) bool { return s.ID == id })
	ts := TimeInfo{Nanoseconds: now}
	switch op.Type {
	case OpAdmitSlave:
		if op.SlaveInfo == nil || op.SlaveInfo.ID.Value == "" {
			return opErrorf("Missing agent info")
		}
		id = op.SlaveInfo.ID
		if slices.ContainsFunc(r.Slaves.Slaves, func(s Slave) bool { return s.Info.ID == id }) {
			return opErrorf("Agent already admitted")
		}
		info := *op.SlaveInfo
		info.Resources = slices.Clone(info.Resources)
		r.Slaves.Slaves = append(r.Slaves.Slaves, Slave{Info: info})
		return nil
	case OpMarkSlaveUnreachable:
		if admitted < 0 {
			return opErrorf("Agent %s not yet admitted", id.Value)
		}
		s := r.Slaves.Slaves[admitted]
		r.Slaves.Slaves = slices.Delete(r.Slaves.Slaves, admitted, admitted+1)
		r.Unreachable.Slaves = append(r.Unreachable.Slaves, UnreachableSlave{
			ID: id, Timestamp: ts, DrainInfo: s.DrainInfo, Deactivated: s.Deactivated,
		})
		return nil
	case OpMarkSlaveReachable:
		if op.SlaveInfo == nil || op.SlaveInfo.ID.Value == "" {
			return opErrorf("Missing agent info")
		}
		id = op.SlaveInfo.ID
		unreach = slices.IndexFunc(r.Unreachable.Slaves, func(s UnreachableSlave) bool { return s.ID == id })
		if slices.ContainsFunc(r.Slaves.Slaves, func(s Slave) bool { return s.Info.ID == id }) {
			return nil // already admitted: no mutation
		}
		s := Slave{Info: *op.SlaveInfo}
		s.Info.Resources = slices.Clone(s.Info.Resources)
		if unreach >= 0 {
			u := r.Unreachable.Slaves[unreach]
			s.DrainInfo, s.Deactivated = u.DrainInfo, u.Deactivated
			r.Unreachable.Slaves = slices.Delete(r.Unreachable.Slaves, unreach, unreach+1)
		}
		r.Slaves.Slaves = append(r.Slaves.Slaves, s)
		return nil
	case OpMarkSlaveGone:
		if gone >= 0 {
			return opErrorf("Agent %s already marked as gone", id.Value)
		}
		switch {
		case admitted >= 0:
			r.Slaves.Slaves = slices.Delete(r.Slaves.Slaves, admitted, admitted+1)
		case unreach >= 0:
			r.Unreachable.Slaves = slices.Delete(r.Unreachable.Slaves, unreach, unreach+1)
		default:
			return opErrorf("Agent %s not found in the registry", id.Value)
		}
		r.Gone.Slaves = append(r.Gone.Slaves, GoneSlave{ID: id, Timestamp: ts})
		return nil
	case OpRemoveSlave:
		if admitted < 0 {
			return opErrorf("Agent %s not yet admitted", id.Value)
		}
		r.Slaves.Slaves = slices.Delete(r.Slaves.Slaves, admitted, admitted+1)
		return nil
	case OpDrainAgent:
		cfg := op.DrainConfig
		if cfg == nil {
			cfg = &DrainConfig{}
		}
		di := &DrainInfo{State: "DRAINING", Config: cfg}
		switch {
		case admitted >= 0:
			r.Slaves.Slaves[admitted].DrainInfo = di
			r.Slaves.Slaves[admitted].Deactivated = true
		case unreach >= 0:
			r.Unreachable.Slaves[unreach].DrainInfo = di
			r.Unreachable.Slaves[unreach].Deactivated = true
		default:
			return opErrorf("Unknown agent")
		}
		return nil
	case OpMarkAgentDrained:
		if admitted < 0 || r.Slaves.Slaves[admitted].DrainInfo == nil {
			return opErrorf("Agent %s is not draining", id.Value)
		}
		r.Slaves.Slaves[admitted].DrainInfo.State = "DRAINED"
		return nil
	case OpDeactivateAgent, OpReactivateAgent:
		deactivate := op.Type == OpDeactivateAgent
		var deact *bool
		var drain *DrainInfo
		switch {
		case admitted >= 0:
			deact, drain = &r.Slaves.Slaves[admitted].Deactivated, r.Slaves.Slaves[admitted].DrainInfo
		case unreach >= 0:
			deact, drain = &r.Unreachable.Slaves[unreach].Deactivated, r.Unreachable.Slaves[unreach].DrainInfo
		default:
			return opErrorf("Unknown agent")
		}
		if !deactivate {
			if !*deact {
				return opErrorf("Agent is not deactivated")
			}
			if drain != nil && drain.State == "DRAINING" {
				return opErrorf("Agent is still in the DRAINING state")
			}
		}
		*deact = deactivate
		if !deactivate {
			if admitted >= 0 {
				r.Slaves.Slaves[admitted].DrainInfo = nil
			} else {
				r.Unreachable.Slaves[unreach].DrainInfo = nil
			}
		}
		return nil
	}
	return opErrorf("unknown operation type %d", int(op.Type))
}

func cloneUnavailability(u Unavailability) Unavailability {
	if u.Duration != nil {
		d := *u.Duration
		u.Duration = &d
	}
	return u
}

func cloneSchedule(s Schedule) Schedule {
	ws := make([]Window, len(s.Windows))
	for i, w := range s.Windows {
		ws[i] = Window{MachineIDs: slices.Clone(w.MachineIDs), Unavailability: cloneUnavailability(w.Unavailability)}
	}
	return Schedule{Windows: ws}
}

func cloneQuotaConfig(c QuotaConfig) QuotaConfig {
	cp := func(m map[string]Scalar) map[string]Scalar {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]Scalar, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return QuotaConfig{Role: c.Role, Guarantees: cp(c.Guarantees), Limits: cp(c.Limits)}
}

// batchVersion is the version of the batch entry format.
const batchVersion = 1

// batch is the JSON of one log entry holding operations.
type batch struct {
	Version  int         `json:"v"`
	Time     int64       `json:"time"`     // unix nanoseconds, from the proposer's clock
	Proposer string      `json:"proposer"` // the proposing master's ID and start time
	Seq      uint64      `json:"seq"`      // per proposer, from 1
	Ops      []Operation `json:"ops"`
}

func encodeBatch(b *batch) ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return out, nil
}

// plainBatch reports whether decodeBatch(encodeBatch(b)) gives back b's
// operations exactly, so the leader may apply b as it built it instead of
// decoding the entry it stored (every other master decodes it). That holds
// for batches of weight updates alone, whose roles are valid UTF-8 (the
// encoder replaces invalid bytes), whose weights are finite (the encoder
// refuses others) and that set no other field (omitempty turns an empty
// slice into nil). regent bench writes only such batches.
func plainBatch(b *batch) bool {
	for i := range b.Ops {
		op := &b.Ops[i]
		if op.Type != OpUpdateWeights || len(op.WeightInfos) == 0 || op.MasterInfo != nil || op.Schedule != nil ||
			op.Machines != nil || op.QuotaConfigs != nil || op.SlaveInfo != nil || op.SlaveID != "" || op.DrainConfig != nil {
			return false
		}
		for _, w := range op.WeightInfos {
			if !utf8.ValidString(w.Role) || math.IsInf(w.Weight, 0) || math.IsNaN(w.Weight) {
				return false
			}
		}
	}
	return b.Version == batchVersion && utf8.ValidString(b.Proposer)
}

func decodeBatch(data []byte) (*batch, error) {
	if b, ok := fastPlainBatch(data); ok {
		return b, nil
	}
	var b batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decode batch: %w: %w", ErrCorrupt, err)
	}
	if b.Version != batchVersion {
		return nil, fmt.Errorf("decode batch: version %d: %w", b.Version, ErrCorrupt)
	}
	return &b, nil
}

// isOpError reports whether err is an operation refused by the registry.
func isOpError(err error) bool {
	var oe *OpError
	return errors.As(err, &oe)
}

// sortedRoles returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
