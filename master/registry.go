package master

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
)

// Registry is the state the master keeps in the replicated log, shaped as
// Mesos's Registry protobuf so its JSON (the /registrar(1)/registry dump)
// uses the same field names. It is changed only by applying [Operation]s.
type Registry struct {
	Master              RegistryMaster      `json:"master,omitzero"`
	Slaves              RegistrySlaves      `json:"slaves,omitzero"`
	Unreachable         UnreachableSlaves   `json:"unreachable,omitzero"`
	Gone                GoneSlaves          `json:"gone,omitzero"`
	Machines            Machines            `json:"machines,omitzero"`
	Schedules           []Schedule          `json:"schedules,omitempty"`
	QuotaConfigs        []QuotaConfig       `json:"quota_configs,omitempty"`
	Weights             []Weight            `json:"weights,omitempty"`
	MinimumCapabilities []MinimumCapability `json:"minimum_capabilities,omitempty"`
}

// RegistryMaster holds the most recent leading master.
type RegistryMaster struct {
	Info *MasterInfo `json:"info,omitempty"`
}

// MasterInfo identifies a master, as Mesos's MasterInfo, plus regent's
// leader-record fields (cluster, start and elected times, lease).
type MasterInfo struct {
	ID       string  `json:"id"`
	IP       uint32  `json:"ip"` // IPv4 in network byte order read as a little-endian integer, as Mesos (MESOS-1201)
	Port     int     `json:"port"`
	PID      string  `json:"pid,omitempty"`
	Hostname string  `json:"hostname,omitempty"`
	Version  string  `json:"version,omitempty"`
	Address  Address `json:"address"`
	Cluster  string  `json:"cluster,omitempty"`
	// StartTime and ElectedTime are seconds since the epoch, as /state.
	StartTime   float64      `json:"start_time,omitempty"`
	ElectedTime float64      `json:"elected_time,omitempty"`
	Lease       DurationInfo `json:"lease,omitzero"`
}

// Address is an advertised network address.
type Address struct {
	Hostname string `json:"hostname,omitempty"`
	IP       string `json:"ip,omitempty"`
	Port     int    `json:"port"`
}

// mesosIP encodes an IPv4 address as Mesos's MasterInfo.ip.
func mesosIP(s string) uint32 {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(ip)
}

// RegistrySlaves lists the admitted agents.
type RegistrySlaves struct {
	Slaves []Slave `json:"slaves,omitempty"`
}

// Slave is an admitted agent.
type Slave struct {
	Info        SlaveInfo  `json:"info"`
	DrainInfo   *DrainInfo `json:"drain_info,omitempty"`
	Deactivated bool       `json:"deactivated,omitempty"`
}

// SlaveID names an agent.
type SlaveID struct {
	Value string `json:"value"`
}

// SlaveInfo describes an agent.
type SlaveInfo struct {
	Hostname  string     `json:"hostname"`
	Port      int        `json:"port,omitempty"`
	Resources []Resource `json:"resources,omitempty"`
	ID        SlaveID    `json:"id"`
}

// Resource is a named scalar resource.
type Resource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Scalar Scalar `json:"scalar"`
}

// Scalar is a scalar resource quantity.
type Scalar struct {
	Value float64 `json:"value"`
}

// DrainInfo is an agent's draining state.
type DrainInfo struct {
	State  string       `json:"state"` // DRAINING or DRAINED
	Config *DrainConfig `json:"config,omitempty"`
}

// DrainConfig is how an agent is drained.
type DrainConfig struct {
	MaxGracePeriod *DurationInfo `json:"max_grace_period,omitempty"`
	MarkGone       bool          `json:"mark_gone,omitempty"`
}

// UnreachableSlaves lists unreachable agents in the order they became so.
type UnreachableSlaves struct {
	Slaves []UnreachableSlave `json:"slaves,omitempty"`
}

// UnreachableSlave is an agent marked unreachable.
type UnreachableSlave struct {
	ID          SlaveID    `json:"id"`
	Timestamp   TimeInfo   `json:"timestamp"`
	DrainInfo   *DrainInfo `json:"drain_info,omitempty"`
	Deactivated bool       `json:"deactivated,omitempty"`
}

// GoneSlaves lists agents marked gone, in the order they became so.
type GoneSlaves struct {
	Slaves []GoneSlave `json:"slaves,omitempty"`
}

// GoneSlave is an agent marked gone.
type GoneSlave struct {
	ID        SlaveID  `json:"id"`
	Timestamp TimeInfo `json:"timestamp"`
}

// Machines lists the machines in maintenance (UP machines are absent).
type Machines struct {
	Machines []Machine `json:"machines,omitempty"`
}

// Machine wraps a MachineInfo, as in the Mesos registry.
type Machine struct {
	Info MachineInfo `json:"info"`
}

// MachineMode is a machine's maintenance mode.
type MachineMode string

// Machine modes.
const (
	ModeUp       MachineMode = "UP"
	ModeDraining MachineMode = "DRAINING"
	ModeDown     MachineMode = "DOWN"
)

// MachineInfo is a machine's maintenance state.
type MachineInfo struct {
	ID             MachineID       `json:"id"`
	Mode           MachineMode     `json:"mode"`
	Unavailability *Unavailability `json:"unavailability,omitempty"`
}

// MachineID identifies a machine by hostname and IP; both must match.
type MachineID struct {
	Hostname string `json:"hostname,omitempty"`
	IP       string `json:"ip,omitempty"`
}

// String renders the ID as Mesos's error texts do (its JSON).
func (id MachineID) String() string {
	b, _ := json.Marshal(id)
	return string(b)
}

// Schedule is a maintenance schedule.
type Schedule struct {
	Windows []Window `json:"windows,omitempty"`
}

// Window is a set of machines and when they are unavailable.
type Window struct {
	MachineIDs     []MachineID    `json:"machine_ids"`
	Unavailability Unavailability `json:"unavailability"`
}

// Unavailability is an interval; a nil Duration means open-ended.
type Unavailability struct {
	Start    TimeInfo      `json:"start"`
	Duration *DurationInfo `json:"duration,omitempty"`
}

// TimeInfo is a point in time in nanoseconds since the epoch.
type TimeInfo struct {
	Nanoseconds int64 `json:"nanoseconds"`
}

// DurationInfo is a duration in nanoseconds.
type DurationInfo struct {
	Nanoseconds int64 `json:"nanoseconds"`
}

// QuotaConfig is a role's quota: guarantees and limits per resource name.
type QuotaConfig struct {
	Role       string            `json:"role"`
	Guarantees map[string]Scalar `json:"guarantees,omitempty"`
	Limits     map[string]Scalar `json:"limits,omitempty"`
}

// Weight wraps a WeightInfo, as in the Mesos registry.
type Weight struct {
	Info WeightInfo `json:"info"`
}

// WeightInfo is a role's weight.
type WeightInfo struct {
	Role   string  `json:"role"`
	Weight float64 `json:"weight"`
}

// MinimumCapability is a capability every leading master must have.
type MinimumCapability struct {
	Capability string `json:"capability"`
}

// capabilityQuotaV2 is required once quota configs exist (as Mesos).
const capabilityQuotaV2 = "QUOTA_V2"

// knownCapabilities are the minimum capabilities this master supports.
var knownCapabilities = map[string]bool{capabilityQuotaV2: true}

// snapshotVersion is the version of the snapshot format.
const snapshotVersion = 1

// snapshot is the JSON written by AppendSnapshot.
type snapshot struct {
	Version  int       `json:"version"`
	Registry *Registry `json:"registry"`
}

// encodeSnapshot serialises r as a versioned snapshot.
func encodeSnapshot(r *Registry) ([]byte, error) {
	b, err := json.Marshal(snapshot{Version: snapshotVersion, Registry: r})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, nil
}

// decodeSnapshot parses a snapshot; an unknown version or bad data is
// ErrCorrupt.
func decodeSnapshot(b []byte) (*Registry, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w: %w", ErrCorrupt, err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("decode snapshot: version %d: %w", s.Version, ErrCorrupt)
	}
	if s.Registry == nil {
		return &Registry{}, nil
	}
	return s.Registry, nil
}

// machine returns the index of id in r.Machines, or -1.
func (r *Registry) machine(id MachineID) int {
	for i, m := range r.Machines.Machines {
		if m.Info.ID == id {
			return i
		}
	}
	return -1
}

// machineModes maps every machine in maintenance to its mode.
func (r *Registry) machineModes() map[MachineID]MachineMode {
	m := make(map[MachineID]MachineMode, len(r.Machines.Machines))
	for _, mc := range r.Machines.Machines {
		m[mc.Info.ID] = mc.Info.Mode
	}
	return m
}

// schedule returns the (single) maintenance schedule, empty if none.
func (r *Registry) schedule() Schedule {
	if len(r.Schedules) == 0 {
		return Schedule{}
	}
	return r.Schedules[0]
}
