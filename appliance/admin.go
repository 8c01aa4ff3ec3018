package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// The replicated log's administration API, mounted by the master at
// /replog/ (master.Config.Extra):
//
//	GET    /replog/status        this master's view of the log and of every member (any master)
//	GET    /replog/members       the members, their progress and the whitelist (leader only)
//	POST   /replog/members       {"address": "host:port"}: add a master at runtime (leader only)
//	DELETE /replog/members/{id}  remove a master by ReplicaID or peer address (leader only)
//
// Leader-only requests on another master are answered like the master's own
// leader-only endpoints: 307 to the leader's advertised API address, or 503
// with Retry-After while no leader is known.

// adminTimeout bounds one request's wait on the log's driver.
const adminTimeout = 10 * time.Second

// admin serves /replog/.
type admin struct {
	node   *replog.Node
	quorum int // the configured quorum (the floor)
	// api is the master's HTTP handler, set once the master is built; the
	// admin asks its /master/redirect where the leader is.
	api atomic.Pointer[http.Handler]
	mux *http.ServeMux
}

// newAdmin returns the /replog/ handler for node.
func newAdmin(node *replog.Node, quorum int) *admin {
	a := &admin{node: node, quorum: quorum, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /replog/status", a.handleStatus)
	a.mux.HandleFunc("GET /replog/members", a.leaderOnly(a.handleMembers))
	a.mux.HandleFunc("POST /replog/members", a.leaderOnly(a.handleAdd))
	a.mux.HandleFunc("DELETE /replog/members/{target}", a.leaderOnly(a.handleRemove))
	return a
}

// setAPI records the master's handler, for leader redirects.
func (a *admin) setAPI(h http.Handler) { a.api.Store(&h) }

// ServeHTTP implements http.Handler.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// memberJSON is one member in /replog/status and /replog/members.
type memberJSON struct {
	Replica   uint64 `json:"replica,string"` // 0: a listed master never heard from
	Address   string `json:"address"`
	Member    bool   `json:"member"` // in the log's latest membership
	Voter     bool   `json:"voter"`  // counted in quorums
	Listed    bool   `json:"listed"` // in the whitelist
	Self      bool   `json:"self"`   // the master that answered
	Leader    bool   `json:"leader"` // the coordinator
	Connected bool   `json:"connected"`
	// Refusal is the last handshake refusal on the way to it, if any.
	Refusal string `json:"refusal,omitempty"`
	// Status, LearnedTo, Lag and HeardMS are known on the leader (and for
	// self) only.
	Status    string  `json:"status,omitempty"`
	LearnedTo *uint64 `json:"learned_to,omitempty"`
	Lag       *uint64 `json:"lag,omitempty"`
	HeardMS   *int64  `json:"heard_ms,omitempty"`
	// State sums the member up for people: "voter", "non-voter (catching
	// up)", "listed (not connected)", ...
	State string `json:"state"`
}

// membersJSON is the body of GET /replog/members.
type membersJSON struct {
	Leader           uint64       `json:"leader,string"`
	Quorum           int          `json:"quorum"`            // in force: answers that make a quorum
	ConfiguredQuorum int          `json:"configured_quorum"` // --quorum: the floor
	Voters           int          `json:"voters"`
	MaxVoters        int          `json:"max_voters"` // 2*configured_quorum-1
	Masters          []string     `json:"masters"`    // the whitelist in force on the leader
	Members          []memberJSON `json:"members"`
}

// statusJSON is the body of GET /replog/status.
type statusJSON struct {
	Replica          uint64       `json:"replica,string"`
	Cluster          uint64       `json:"cluster,string"`
	Address          string       `json:"address"`
	Role             string       `json:"role"`   // follower, campaigning, coordinator
	Status           string       `json:"status"` // EMPTY, STARTING, RECOVERING, VOTING
	Begin            uint64       `json:"begin"`
	End              uint64       `json:"end"`
	LearnedTo        uint64       `json:"learned_to"`
	Voter            bool         `json:"voter"`
	Voters           int          `json:"voters"`
	Quorum           int          `json:"quorum"`
	ConfiguredQuorum int          `json:"configured_quorum"`
	Reachable        int          `json:"reachable"`
	Leader           uint64       `json:"leader,string"`
	LeaderAddress    string       `json:"leader_address,omitempty"`
	LeaseRemainingMS int64        `json:"lease_remaining_ms"`
	InFlight         int          `json:"in_flight"`
	Refused          uint64       `json:"refused"`
	RefusedByPeers   uint64       `json:"refused_by_peers"`
	LastRefusal      string       `json:"last_refusal,omitempty"`
	InboxDropped     uint64       `json:"inbox_dropped"`
	Masters          []string     `json:"masters"`
	Members          []memberJSON `json:"members"`
	Error            string       `json:"error,omitempty"`
	// Catchup is the replica's catch-up, while one is in progress.
	Catchup *catchupJSON `json:"catchup,omitempty"`
}

// addJSON is the body of POST /replog/members.
type addJSON struct {
	Address string `json:"address"`
}

// changeJSON answers an accepted change.
type changeJSON struct {
	Message string   `json:"message"`
	Masters []string `json:"masters"`
}

// errorJSON answers a refused or failed request.
type errorJSON struct {
	Error string `json:"error"`
}

func roleName(r paxos.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "Role"))
}

// toMemberJSON converts and sums up one member.
func toMemberJSON(m replog.MemberStatus) memberJSON {
	j := memberJSON{
		Replica: uint64(m.ID), Address: m.Addr, Member: m.Member, Voter: m.Voter, Listed: m.Listed,
		Self: m.Self, Leader: m.Leader, Connected: m.Connected, Refusal: m.Refusal,
	}
	if m.Known {
		lt, lag := uint64(m.LearnedTo), m.Lag
		j.Status, j.LearnedTo, j.Lag = statusName(m.Status), &lt, &lag // statusName: logcmd.go
		if !m.Self {
			ms := m.Heard.Milliseconds()
			j.HeardMS = &ms
		}
	}
	j.State = memberState(m)
	return j
}

// memberState says in a few words where a member stands.
func memberState(m replog.MemberStatus) string {
	switch {
	case m.Member && m.Voter && !m.Listed:
		return "voter (being removed: not in the masters list)"
	case m.Member && m.Voter:
		return "voter"
	case m.Member && m.Known && m.Status == paxos.StatusVoting:
		return "non-voter (caught up, promotion next)"
	case m.Member && !m.Listed:
		return "non-voter (being removed: not in the masters list)"
	case m.Member:
		return "non-voter (catching up)"
	case m.Self:
		return "not a member"
	case strings.HasPrefix(m.Refusal, "refused by peer"):
		return "listed (refuses this master)"
	case m.Refusal != "":
		return "listed (refused)"
	case m.Connected && m.ID != 0:
		return "listed (connected, joining)"
	case m.Connected:
		return "listed (connected)"
	default:
		return "listed (not connected)"
	}
}

func (a *admin) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	st := a.node.Status()
	ms, err := a.node.Members(ctx)
	out := statusJSON{
		Replica: uint64(st.Replica), Cluster: uint64(st.Cluster), Address: st.Addr,
		Role: roleName(st.Role), Status: statusName(st.ReplicaStatus),
		Begin: uint64(st.Begin), End: uint64(st.End), LearnedTo: uint64(st.LearnedTo),
		Voter: st.Voter, Voters: st.Voters, Quorum: st.Quorum, ConfiguredQuorum: a.quorum, Reachable: st.Reachable,
		Leader: uint64(st.Leader), LeaderAddress: st.LeaderAddr, LeaseRemainingMS: st.LeaseRemaining.Milliseconds(),
		InFlight: st.InFlight, Refused: st.Refused, RefusedByPeers: st.RefusedByPeers, LastRefusal: st.LastRefusal,
		InboxDropped: st.InboxDropped, Masters: a.node.Masters(), Members: []memberJSON{},
		Catchup: toCatchupJSON(st.Catchup, time.Now()),
	}
	if st.Err != nil {
		out.Error = st.Err.Error()
	}
	if err != nil && out.Error == "" {
		out.Error = err.Error()
	}
	for _, m := range ms {
		out.Members = append(out.Members, toMemberJSON(m))
	}
	writeAdminJSON(w, http.StatusOK, out)
}

func (a *admin) handleMembers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	ms, err := a.node.Members(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st := a.node.Status()
	out := membersJSON{
		Leader: uint64(st.Leader), Quorum: st.Quorum, ConfiguredQuorum: a.quorum, Voters: st.Voters,
		MaxVoters: 2*a.quorum - 1, Masters: a.node.Masters(), Members: []memberJSON{},
	}
	for _, m := range ms {
		out.Members = append(out.Members, toMemberJSON(m))
	}
	writeAdminJSON(w, http.StatusOK, out)
}

func (a *admin) handleAdd(w http.ResponseWriter, r *http.Request) {
	var body addJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeAdminJSON(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf(`decode body: %v (want {"address": "host:port"})`, err)})
		return
	}
	if err := checkAddress(body.Address); err != nil {
		writeAdminJSON(w, http.StatusBadRequest, errorJSON{Error: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	if err := a.node.AddMaster(ctx, body.Address); err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusAccepted, changeJSON{
		Message: fmt.Sprintf("added %s to the masters list of the leader: it joins as a non-voter and becomes a voter once caught up; "+
			"list it in master.masters on every master too", body.Address),
		Masters: a.node.Masters(),
	})
}

func (a *admin) handleRemove(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	addr, err := a.node.RemoveMaster(ctx, target)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusAccepted, changeJSON{
		Message: fmt.Sprintf("removed %s from the masters list of the leader: its replica leaves the membership next; "+
			"stop that master for good and remove it from master.masters on every master", addr),
		Masters: a.node.Masters(),
	})
}

// fail answers err: a refusal is 409 with its reason; not leading redirects.
func (a *admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, replog.ErrNotLeader):
		a.redirect(w, r)
	case errors.Is(err, replog.ErrMembershipRefused):
		writeAdminJSON(w, http.StatusConflict, errorJSON{Error: err.Error()})
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, replog.ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeAdminJSON(w, http.StatusServiceUnavailable, errorJSON{Error: err.Error()})
	default:
		writeAdminJSON(w, http.StatusInternalServerError, errorJSON{Error: err.Error()})
	}
}

// leaderOnly serves h on the coordinator and redirects elsewhere.
func (a *admin) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.node.Status().Role != paxos.RoleCoordinator {
			a.redirect(w, r)
			return
		}
		h(w, r)
	}
}

// redirect answers as the master's leader-only endpoints do: it asks the
// master's /master/redirect for the leader's advertised API address and
// sends the client there with the same path and query (307), or passes on
// the 503 and its Retry-After when no leader is known.
func (a *admin) redirect(w http.ResponseWriter, r *http.Request) {
	hp := a.api.Load()
	if hp == nil {
		w.Header().Set("Retry-After", "1")
		writeAdminJSON(w, http.StatusServiceUnavailable, errorJSON{Error: "master is starting"})
		return
	}
	rec := httptest.NewRecorder()
	(*hp).ServeHTTP(rec, httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/master/redirect", nil))
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusTemporaryRedirect || loc == "" {
		for _, k := range []string{"Retry-After", "Content-Type"} {
			if v := rec.Header().Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	w.Header().Set("Location", loc+r.URL.RequestURI())
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// checkAddress checks a peer address given to POST /replog/members.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("address %q is not a peer address host:port", addr)
	}
	return nil
}

// writeAdminJSON writes v as indented JSON with code.
func writeAdminJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
