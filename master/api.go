package master

import (
	"mime"
	"net/http"
	"strings"
)

// call is an operator API (v1) call in its JSON form.
type call struct {
	Type                      string                     `json:"type"`
	UpdateMaintenanceSchedule *updateMaintenanceSchedule `json:"update_maintenance_schedule,omitempty"`
	StartMaintenance          *machinesCall              `json:"start_maintenance,omitempty"`
	StopMaintenance           *machinesCall              `json:"stop_maintenance,omitempty"`
	UpdateQuota               *updateQuota               `json:"update_quota,omitempty"`
	UpdateWeights             *updateWeights             `json:"update_weights,omitempty"`
}

type updateMaintenanceSchedule struct {
	Schedule Schedule `json:"schedule"`
}

type machinesCall struct {
	Machines []MachineID `json:"machines"`
}

type updateQuota struct {
	Force        bool          `json:"force,omitempty"`
	QuotaConfigs []QuotaConfig `json:"quota_configs"`
}

type updateWeights struct {
	WeightInfos []WeightInfo `json:"weight_infos"`
}

// implementedCalls are the v1 calls this master answers.
var implementedCalls = map[string]bool{
	"GET_HEALTH": true, "GET_FLAGS": true, "GET_VERSION": true, "GET_MASTER": true, "GET_STATE": true,
	"GET_MAINTENANCE_STATUS": true, "GET_MAINTENANCE_SCHEDULE": true, "UPDATE_MAINTENANCE_SCHEDULE": true,
	"START_MAINTENANCE": true, "STOP_MAINTENANCE": true, "GET_QUOTA": true, "UPDATE_QUOTA": true,
	"GET_WEIGHTS": true, "UPDATE_WEIGHTS": true,
}

// otherCalls are Mesos v1 calls this master knows of but does not
// implement (501).
var otherCalls = map[string]bool{
	"GET_METRICS": true, "GET_LOGGING_LEVEL": true, "SET_LOGGING_LEVEL": true, "LIST_FILES": true,
	"READ_FILE": true, "GET_AGENTS": true, "GET_FRAMEWORKS": true, "GET_EXECUTORS": true,
	"GET_OPERATIONS": true, "GET_TASKS": true, "GET_ROLES": true, "RESERVE_RESOURCES": true,
	"UNRESERVE_RESOURCES": true, "CREATE_VOLUMES": true, "DESTROY_VOLUMES": true, "GROW_VOLUME": true,
	"SHRINK_VOLUME": true, "SET_QUOTA": true, "REMOVE_QUOTA": true, "TEARDOWN": true,
	"MARK_AGENT_GONE": true, "DRAIN_AGENT": true, "DEACTIVATE_AGENT": true, "REACTIVATE_AGENT": true,
	"SUBSCRIBE": true, "UNKNOWN": true,
}

// acceptsJSON reports whether an Accept header admits application/json.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
			continue
		}
		if mt == "application/json" || mt == "application/*" || mt == "*/*" {
			return true
		}
	}
	return false
}

// handleAPI serves POST /api/v1 with JSON calls.
func (m *Master) handleAPI(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		badRequest(w, "Expecting 'Content-Type' to be present")
		return
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		http.Error(w, "Expecting 'Content-Type' of application/json; application/x-protobuf is not supported", http.StatusUnsupportedMediaType)
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		http.Error(w, "Expecting 'Accept' to allow application/json", http.StatusNotAcceptable)
		return
	}
	var c call
	if !m.decodeBody(w, r, &c) {
		return
	}
	switch {
	case c.Type == "":
		badRequest(w, "Failed to validate master::Call: Expecting 'type' to be present")
		return
	case otherCalls[c.Type]:
		http.Error(w, "Unsupported call type "+c.Type, http.StatusNotImplemented)
		return
	case !implementedCalls[c.Type]:
		badRequest(w, "Failed to parse body into Call: unknown call type '"+c.Type+"'")
		return
	}
	reply := func(field string, v any) {
		writeJSON(w, http.StatusOK, map[string]any{"type": c.Type, field: v})
	}
	switch c.Type {
	case "GET_HEALTH":
		reply("get_health", map[string]bool{"healthy": true})
	case "GET_FLAGS":
		type flag struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}
		fs := []flag{}
		for _, k := range sortedKeys(m.cfg.Flags) {
			fs = append(fs, flag{k, m.cfg.Flags[k]})
		}
		reply("get_flags", map[string]any{"flags": fs})
	case "GET_VERSION":
		reply("get_version", map[string]any{"version_info": map[string]string{"version": m.cfg.Version}})
	case "GET_MASTER":
		info := m.Info()
		m.mu.RLock()
		elected := m.elected
		m.mu.RUnlock()
		info.ElectedTime = seconds(elected)
		reply("get_master", map[string]any{"master_info": info, "start_time": seconds(m.start), "elected_time": seconds(elected)})
	case "GET_STATE":
		var agents []map[string]any
		var recovered []SlaveInfo
		m.reg.view(func(reg *Registry) {
			for _, s := range reg.Slaves.Slaves {
				agents = append(agents, map[string]any{"agent_info": s.Info, "active": !s.Deactivated, "deactivated": s.Deactivated, "drain_info": s.DrainInfo})
				recovered = append(recovered, s.Info)
			}
		})
		reply("get_state", map[string]any{
			"get_tasks": map[string]any{}, "get_executors": map[string]any{}, "get_frameworks": map[string]any{},
			"get_agents": map[string]any{"agents": nonNil(agents), "recovered_agents": nonNil(recovered)},
		})
	case "GET_MAINTENANCE_STATUS":
		reply("get_maintenance_status", map[string]any{"status": m.maintenanceStatus()})
	case "GET_MAINTENANCE_SCHEDULE":
		var s Schedule
		m.reg.view(func(reg *Registry) { s = cloneSchedule(reg.schedule()) })
		reply("get_maintenance_schedule", map[string]any{"schedule": s})
	case "GET_QUOTA":
		reply("get_quota", map[string]any{"status": m.quotaStatus()})
	case "GET_WEIGHTS":
		reply("get_weights", map[string]any{"weight_infos": m.weightInfos()})
	case "UPDATE_MAINTENANCE_SCHEDULE":
		if c.UpdateMaintenanceSchedule == nil {
			badRequest(w, "Expecting 'update_maintenance_schedule' to be present")
			return
		}
		s := c.UpdateMaintenanceSchedule.Schedule
		var err error
		m.reg.view(func(reg *Registry) { err = validateSchedule(&s, reg.machineModes()) })
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		m.submitAndReply(w, r, Operation{Type: OpUpdateSchedule, Schedule: &s})
	case "START_MAINTENANCE", "STOP_MAINTENANCE":
		mc, t, field := c.StartMaintenance, OpStartMaintenance, "start_maintenance"
		if c.Type == "STOP_MAINTENANCE" {
			mc, t, field = c.StopMaintenance, OpStopMaintenance, "stop_maintenance"
		}
		if mc == nil {
			badRequest(w, "Expecting '"+field+"' to be present")
			return
		}
		if err := m.checkMachines(t, mc.Machines); err != nil {
			badRequest(w, err.Error())
			return
		}
		m.submitAndReply(w, r, Operation{Type: t, Machines: mc.Machines})
	case "UPDATE_QUOTA":
		if c.UpdateQuota == nil {
			badRequest(w, "Expecting 'update_quota' to be present")
			return
		}
		cs := c.UpdateQuota.QuotaConfigs
		if err := validateQuotaConfigs(cs); err != nil {
			badRequest(w, err.Error())
			return
		}
		m.submitAndReply(w, r, Operation{Type: OpUpdateQuota, QuotaConfigs: cs})
	case "UPDATE_WEIGHTS":
		if c.UpdateWeights == nil {
			badRequest(w, "Expecting 'update_weights' to be present")
			return
		}
		ws := c.UpdateWeights.WeightInfos
		for i := range ws {
			ws[i].Role = strings.TrimSpace(ws[i].Role)
		}
		if err := validateWeights(ws); err != nil {
			badRequest(w, err.Error())
			return
		}
		m.submitAndReply(w, r, Operation{Type: OpUpdateWeights, WeightInfos: ws})
	}
}
