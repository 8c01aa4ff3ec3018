package master

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// routes builds the API: every endpoint under both /master/<endpoint> and
// /<endpoint>, as Mesos's libprocess delegate does.
func (m *Master) routes() http.Handler {
	mux := http.NewServeMux()
	both := func(method, endpoint string, h http.HandlerFunc) {
		mux.HandleFunc(strings.TrimSpace(method+" /master/"+endpoint), h)
		mux.HandleFunc(strings.TrimSpace(method+" /"+endpoint), h)
	}
	// Any master.
	both("GET", "health", m.handleHealth)
	both("GET", "flags", m.handleFlags)
	both("GET", "version", m.handleVersion)
	both("", "redirect", m.handleRedirect)
	both("", "redirect/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	both("GET", "metrics/snapshot", m.handleMetricsSnapshot)
	mux.HandleFunc("GET /registrar(1)/registry", m.handleRegistry)
	mux.Handle("GET /metrics", m.metrics.prometheusHandler())
	// Leader only.
	lead := func(method, endpoint string, h http.HandlerFunc) { both(method, endpoint, m.leaderOnly(h)) }
	lead("GET", "state", m.handleState)
	lead("GET", "state-summary", m.handleStateSummary)
	lead("GET", "maintenance/schedule", m.handleGetSchedule)
	lead("POST", "maintenance/schedule", m.handlePostSchedule)
	lead("GET", "maintenance/status", m.handleMaintenanceStatus)
	lead("POST", "machine/down", m.handleMachineDown)
	lead("POST", "machine/up", m.handleMachineUp)
	lead("GET", "quota", m.handleGetQuota)
	lead("POST", "quota", m.handlePostQuota)
	lead("DELETE", "quota/{role...}", m.handleDeleteQuota)
	lead("GET", "weights", m.handleGetWeights)
	lead("PUT", "weights", m.handlePutWeights)
	lead("POST", "api/v1", m.handleAPI)
	if m.cfg.Extra != nil {
		mux.Handle("/replog/", m.cfg.Extra)
	}
	if m.cfg.EnablePProf {
		routePProf(mux)
	}
	return m.metrics.instrument(mux)
}

// unavailable answers 503 with Retry-After and a JSON body naming what is
// missing.
func unavailable(w http.ResponseWriter, retry time.Duration, reason string) {
	secs := max(1, int(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": reason})
}

// retryAfter estimates when a leader may be known.
func (m *Master) retryAfter(st LogStatus) time.Duration {
	if st.Lease > 0 {
		return st.Lease
	}
	return m.cfg.ElectionJitter + m.cfg.CheckInterval
}

// LeaderEpochHeader is the response header with which a leader-only
// endpoint's answer names the leadership that served it: in decimal, one
// past the end of the replicated log when that master was elected (the
// position of its leader record). Epochs need no clock: a master is elected
// only after a quorum promised it, so its election sees every position the
// previous leader had learned, the leader record included, and a leadership
// that served answers with an epoch greater than every earlier one's. A
// master elected again (after a restart or a lost lease) answers with a new
// epoch. The chaos harness uses it to find answers from deposed leaders.
const LeaderEpochHeader = "Regent-Leader-Epoch"

// leaderOnly gates a leader-only endpoint: served on a recovered leader
// whose lease is valid, with [LeaderEpochHeader]; redirected (307) to the
// known leader; else 503.
func (m *Master) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := m.log.Status()
		m.mu.RLock()
		leading, recovered, exiting, epoch := m.leading, m.recovered, m.exiting, m.epoch
		m.mu.RUnlock()
		switch {
		case exiting:
			unavailable(w, m.retryAfter(st), "master is exiting")
			return
		case leading && !recovered:
			unavailable(w, m.retryAfter(st), "Master has not finished recovery")
			return
		case leading && !m.leaseValid(st):
			// Stop serving at once; the control loop exits shortly.
			unavailable(w, m.cfg.ElectionJitter+m.cfg.CheckInterval, "leading master cut off from the quorum: lease not valid")
			return
		case leading:
			w.Header().Set(LeaderEpochHeader, strconv.FormatUint(epoch, 10))
			h(w, r)
			return
		}
		l, ok := m.knownLeader(st)
		if !ok {
			unavailable(w, m.retryAfter(st), m.noLeaderReason(st))
			return
		}
		p := r.URL.EscapedPath()
		if strings.HasPrefix(p, "/master/") {
			p = strings.TrimPrefix(p, "/master")
		}
		loc := "//" + net.JoinHostPort(leaderHost(l), strconv.Itoa(l.Port)) + "/master" + p
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

// writeJSON writes v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// badRequest answers 400 with a plain-text reason, as Mesos does.
func badRequest(w http.ResponseWriter, msg string) {
	http.Error(w, msg, http.StatusBadRequest)
}

// decodeBody strictly decodes one JSON value from the limited body into v:
// 413 past the limit, 400 naming the field for unknown or mistyped fields
// and for trailing data. It reports whether decoding succeeded; if not, it
// has answered.
func (m *Master) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, m.cfg.MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var extra json.RawMessage
		if e := dec.Decode(&extra); e != io.EOF {
			if e == nil {
				err = errors.New("unexpected data after the JSON value")
			} else {
				err = e
			}
		}
	}
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		http.Error(w, fmt.Sprintf("Request body is larger than %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
		return false
	}
	badRequest(w, "Failed to parse the request body: "+describeJSONError(err))
	return false
}

// fastBodyMax is the largest body fastWeightsBody reads.
const fastBodyMax = 4 << 10

// fastWeightsBody decodes a small PUT /weights body in the compact form
// regent bench and most clients send (see fastWeightInfos), or reports
// false with r.Body replaced by what it read followed by the rest, for
// decodeBody. Only bodies of a declared length within the limit are tried,
// so decodeBody's answers (413, 400 with the offset) stay as they were.
func (m *Master) fastWeightsBody(r *http.Request) ([]WeightInfo, bool) {
	if r.ContentLength <= 0 || r.ContentLength > min(fastBodyMax, m.cfg.MaxBodyBytes) {
		return nil, false
	}
	buf := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, buf)
	if err == nil {
		if ws, ok := fastWeightInfos(buf); ok {
			return ws, true
		}
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf[:n]), errReader{err}, r.Body), r.Body}
	return nil, false
}

// errReader returns err from Read, or io.EOF if err is nil.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

// describeJSONError names the field or offset a decoding error is about.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON input"
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: cannot use JSON %s as %s", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("cannot use JSON %s as %s", te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d: %v", se.Offset, se)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// submitAndReply proposes op and answers 200 once it is applied, 400 with
// the registry's refusal, 503 if the registrar aborted.
func (m *Master) submitAndReply(w http.ResponseWriter, r *http.Request, op Operation) {
	err := m.reg.submit(r.Context(), op)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case isOpError(err):
		badRequest(w, err.Error())
	case errors.Is(err, ErrRegistrarAborted):
		unavailable(w, m.cfg.ElectionJitter+m.cfg.CheckInterval, "registrar aborted: "+err.Error())
	default:
		unavailable(w, m.cfg.ElectionJitter+m.cfg.CheckInterval, "registry update not confirmed: "+err.Error())
	}
}

func (m *Master) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func (m *Master) handleFlags(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"flags": m.cfg.Flags})
}

func (m *Master) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": m.cfg.Version})
}

// handleRedirect answers 307 to the leader's //host:port (itself when
// leading), 503 when no leader is known.
func (m *Master) handleRedirect(w http.ResponseWriter, _ *http.Request) {
	st := m.log.Status()
	var l MasterInfo
	if m.isLeading() {
		l = m.Info()
	} else {
		var ok bool
		if l, ok = m.knownLeader(st); !ok {
			unavailable(w, m.retryAfter(st), m.noLeaderReason(st))
			return
		}
	}
	w.Header().Set("Location", "//"+net.JoinHostPort(leaderHost(l), strconv.Itoa(l.Port)))
	w.WriteHeader(http.StatusTemporaryRedirect)
}

func (m *Master) handleMetricsSnapshot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.metrics.snapshot())
}

func (m *Master) handleRegistry(w http.ResponseWriter, _ *http.Request) {
	var b []byte
	var err error
	m.reg.view(func(r *Registry) { b, err = json.Marshal(r) })
	if err != nil {
		http.Error(w, "encode registry: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// stateJSON is the /state body (the parts a registry-only master has).
func (m *Master) stateJSON() map[string]any {
	self := m.Info()
	m.mu.RLock()
	elected := m.elected
	m.mu.RUnlock()
	var slaves []map[string]any
	var recovered []SlaveInfo
	var deactivated, unreachable int
	m.reg.view(func(r *Registry) {
		for _, s := range r.Slaves.Slaves {
			slaves = append(slaves, agentJSON(s))
			recovered = append(recovered, s.Info)
			if s.Deactivated {
				deactivated++
			}
		}
		unreachable = len(r.Unreachable.Slaves)
	})
	leaderInfo := self
	leaderInfo.ElectedTime = seconds(elected)
	return map[string]any{
		"version":                 m.cfg.Version,
		"start_time":              seconds(m.start),
		"elected_time":            seconds(elected),
		"id":                      self.ID,
		"pid":                     self.PID,
		"hostname":                self.Hostname,
		"capabilities":            []string{capabilityQuotaV2},
		"activated_slaves":        len(slaves) - deactivated,
		"deactivated_slaves":      deactivated,
		"unreachable_slaves":      unreachable,
		"leader":                  self.PID,
		"leader_info":             leaderInfo,
		"cluster":                 m.cfg.Cluster,
		"flags":                   m.cfg.Flags,
		"slaves":                  nonNil(slaves),
		"recovered_slaves":        nonNil(recovered),
		"frameworks":              []any{},
		"completed_frameworks":    []any{},
		"unregistered_frameworks": []any{},
	}
}

func agentJSON(s Slave) map[string]any {
	a := map[string]any{
		"id":          s.Info.ID.Value,
		"hostname":    s.Info.Hostname,
		"port":        s.Info.Port,
		"resources":   resourcesMap(s.Info.Resources),
		"active":      !s.Deactivated,
		"deactivated": s.Deactivated,
	}
	if s.DrainInfo != nil {
		a["drain_info"] = s.DrainInfo
	}
	return a
}

func resourcesMap(rs []Resource) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		out[r.Name] += r.Scalar.Value
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (m *Master) handleState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.stateJSON())
}

func (m *Master) handleStateSummary(w http.ResponseWriter, _ *http.Request) {
	self := m.Info()
	var slaves []map[string]any
	m.reg.view(func(r *Registry) {
		for _, s := range r.Slaves.Slaves {
			slaves = append(slaves, agentJSON(s))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{
		"hostname":   self.Hostname,
		"cluster":    m.cfg.Cluster,
		"slaves":     nonNil(slaves),
		"frameworks": []any{},
	})
}

func (m *Master) handleGetSchedule(w http.ResponseWriter, _ *http.Request) {
	var s Schedule
	m.reg.view(func(r *Registry) { s = cloneSchedule(r.schedule()) })
	writeJSON(w, http.StatusOK, s)
}

func (m *Master) handlePostSchedule(w http.ResponseWriter, r *http.Request) {
	var s Schedule
	if !m.decodeBody(w, r, &s) {
		return
	}
	var err error
	m.reg.view(func(reg *Registry) { err = validateSchedule(&s, reg.machineModes()) })
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	m.submitAndReply(w, r, Operation{Type: OpUpdateSchedule, Schedule: &s})
}

// maintenanceStatus is the ClusterStatus JSON.
type maintenanceStatus struct {
	DrainingMachines []drainingMachine `json:"draining_machines,omitempty"`
	DownMachines     []MachineID       `json:"down_machines,omitempty"`
}

type drainingMachine struct {
	ID MachineID `json:"id"`
}

func (m *Master) maintenanceStatus() maintenanceStatus {
	var st maintenanceStatus
	m.reg.view(func(r *Registry) {
		for _, mc := range r.Machines.Machines {
			switch mc.Info.Mode {
			case ModeDraining:
				st.DrainingMachines = append(st.DrainingMachines, drainingMachine{ID: mc.Info.ID})
			case ModeDown:
				st.DownMachines = append(st.DownMachines, mc.Info.ID)
			}
		}
	})
	return st
}

func (m *Master) handleMaintenanceStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.maintenanceStatus())
}

func (m *Master) handleMachineDown(w http.ResponseWriter, r *http.Request) {
	m.machines(w, r, OpStartMaintenance)
}

func (m *Master) handleMachineUp(w http.ResponseWriter, r *http.Request) {
	m.machines(w, r, OpStopMaintenance)
}

func (m *Master) machines(w http.ResponseWriter, r *http.Request, t OpType) {
	var ids []MachineID
	if !m.decodeBody(w, r, &ids) {
		return
	}
	if err := m.checkMachines(t, ids); err != nil {
		badRequest(w, err.Error())
		return
	}
	m.submitAndReply(w, r, Operation{Type: t, Machines: ids})
}

func (m *Master) checkMachines(t OpType, ids []MachineID) error {
	var err error
	m.reg.view(func(reg *Registry) {
		if t == OpStartMaintenance {
			err = reg.validateStartMaintenance(ids)
		} else {
			err = reg.validateStopMaintenance(ids)
		}
	})
	return err
}

// quotaStatus is the QuotaStatus JSON.
type quotaStatus struct {
	Infos   []quotaInfo   `json:"infos,omitempty"`
	Configs []QuotaConfig `json:"configs,omitempty"`
}

type quotaInfo struct {
	Role      string     `json:"role"`
	Guarantee []Resource `json:"guarantee,omitempty"`
}

func (m *Master) quotaStatus() quotaStatus {
	var qs quotaStatus
	m.reg.view(func(r *Registry) {
		for _, c := range r.QuotaConfigs {
			qi := quotaInfo{Role: c.Role}
			for _, k := range sortedKeys(c.Guarantees) {
				qi.Guarantee = append(qi.Guarantee, Resource{Name: k, Type: "SCALAR", Scalar: c.Guarantees[k]})
			}
			qs.Infos = append(qs.Infos, qi)
			qs.Configs = append(qs.Configs, cloneQuotaConfig(c))
		}
	})
	return qs
}

func (m *Master) handleGetQuota(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.quotaStatus())
}

// quotaRequest is the legacy /quota POST body.
type quotaRequest struct {
	Role      string     `json:"role"`
	Guarantee []Resource `json:"guarantee"`
	Force     bool       `json:"force,omitempty"`
	Principal string     `json:"principal,omitempty"`
}

// handlePostQuota sets a role's quota the pre-1.9 way: the guarantee
// becomes both guarantees and limits.
func (m *Master) handlePostQuota(w http.ResponseWriter, r *http.Request) {
	var q quotaRequest
	if !m.decodeBody(w, r, &q) {
		return
	}
	const prefix = "Failed to validate set quota request: "
	if err := validateRole(q.Role); err != nil {
		badRequest(w, prefix+err.Error())
		return
	}
	if q.Role == "*" {
		badRequest(w, prefix+"Quota cannot be set for the default '*' role")
		return
	}
	if len(q.Guarantee) == 0 {
		badRequest(w, prefix+"Resources in quota request must not be empty")
		return
	}
	g := map[string]Scalar{}
	for _, res := range q.Guarantee {
		switch {
		case res.Name == "":
			badRequest(w, prefix+"Resource name must not be empty")
			return
		case res.Type != "" && res.Type != "SCALAR":
			badRequest(w, prefix+"Quota can only be set for scalar resources; '"+res.Name+"' is "+res.Type)
			return
		}
		if err := validateScalar(res.Scalar.Value); err != nil {
			badRequest(w, prefix+"Invalid value for '"+res.Name+"': "+err.Error())
			return
		}
		if _, dup := g[res.Name]; dup {
			badRequest(w, prefix+"Quota request contains duplicate resource '"+res.Name+"'")
			return
		}
		g[res.Name] = res.Scalar
	}
	var exists bool
	m.reg.view(func(reg *Registry) {
		for _, c := range reg.QuotaConfigs {
			exists = exists || c.Role == q.Role
		}
	})
	if exists {
		badRequest(w, prefix+"Quota cannot be set for a role that already has quota")
		return
	}
	m.submitAndReply(w, r, Operation{Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: q.Role, Guarantees: g, Limits: g}}})
}

func (m *Master) handleDeleteQuota(w http.ResponseWriter, r *http.Request) {
	role := r.PathValue("role")
	if role == "" {
		badRequest(w, "Failed to remove quota: Missing role in the request path")
		return
	}
	var exists bool
	m.reg.view(func(reg *Registry) {
		for _, c := range reg.QuotaConfigs {
			exists = exists || c.Role == role
		}
	})
	if !exists {
		badRequest(w, "Failed to remove quota: Role '"+role+"' has no quota set")
		return
	}
	m.submitAndReply(w, r, Operation{Type: OpUpdateQuota, QuotaConfigs: []QuotaConfig{{Role: role}}})
}

func (m *Master) weightInfos() []WeightInfo {
	var ws []WeightInfo
	m.reg.view(func(r *Registry) {
		for _, w := range r.Weights {
			ws = append(ws, w.Info)
		}
	})
	return nonNil(ws)
}

func (m *Master) handleGetWeights(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.weightInfos())
}

func (m *Master) handlePutWeights(w http.ResponseWriter, r *http.Request) {
	ws, ok := m.fastWeightsBody(r)
	if !ok && !m.decodeBody(w, r, &ws) {
		return
	}
	for i := range ws {
		ws[i].Role = strings.TrimSpace(ws[i].Role)
	}
	if err := validateWeights(ws); err != nil {
		badRequest(w, err.Error())
		return
	}
	m.submitAndReply(w, r, Operation{Type: OpUpdateWeights, WeightInfos: ws})
}
