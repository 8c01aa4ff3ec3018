package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/replogtest"
)

// startSoloNode runs a one-replica log (quorum 1) over memory storage and
// makes it the coordinator.
func startSoloNode(t *testing.T) *replog.Node {
	t.Helper()
	n, err := replog.New(replog.Config{Addr: "10.0.0.1:5051", Masters: []string{"10.0.0.1:5051"}, Quorum: 1, AutoInitialize: true}, replogtest.NewStorage())
	if err != nil {
		t.Fatal(err)
	}
	tr := replogtest.NewNetwork(1).Join("10.0.0.1:5051", n.ID, n.Step)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx, tr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ectx, ecancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ecancel()
	for {
		if _, err := n.Elect(ectx); err == nil {
			return n
		} else if ectx.Err() != nil {
			t.Fatalf("Elect: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the log's initialisation on real time
	}
}

// fakeRedirect is the master's /master/redirect as the admin asks it.
type fakeRedirect struct {
	code int
	loc  string
}

func (f fakeRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/master/redirect" {
		http.NotFound(w, r)
		return
	}
	if f.loc != "" {
		w.Header().Set("Location", f.loc)
	} else {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(f.code)
}

func TestAdminOnTheLeader(t *testing.T) {
	t.Parallel()
	n := startSoloNode(t)
	a := newAdmin(n, 1)
	a.setAPI(fakeRedirect{code: http.StatusServiceUnavailable})
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		contains                 string
	}{
		{"Status", "GET", "/replog/status", "", 200, `"role": "coordinator"`},
		{"Members", "GET", "/replog/members", "", 200, `"voters": 1`},
		{"AddBadBody", "POST", "/replog/members", `{"addr": "x"}`, 400, "decode body"},
		{"AddBadAddress", "POST", "/replog/members", `{"address": "10.0.0.2"}`, 400, "not a peer address"},
		{"AddBeyondQuorum", "POST", "/replog/members", `{"address": "10.0.0.2:5051"}`, 409, "2*quorum-1 = 1"},
		{"RemoveLeader", "DELETE", "/replog/members/10.0.0.1:5051", "", 409, "is the leader"},
		{"RemoveUnknown", "DELETE", "/replog/members/42", "", 409, "no member"},
		{"WrongMethod", "PUT", "/replog/members", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("%s %s %s = %d %s, want %d containing %q", tc.method, tc.path, tc.body, rec.Code, rec.Body, tc.code, tc.contains)
			}
		})
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/replog/members", nil))
	var ms membersJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms.Members) != 1 || !ms.Members[0].Leader || !ms.Members[0].Self || ms.Members[0].State != "voter" ||
		ms.Members[0].Replica != uint64(n.ID()) || ms.MaxVoters != 1 || ms.Quorum != 1 {
		t.Errorf("members = %+v, want this replica alone, leader and voter", ms)
	}
}

func TestAdminRedirectsWhenNotLeading(t *testing.T) {
	t.Parallel()
	n, err := replog.New(replog.Config{Addr: "10.0.0.1:5051", Masters: []string{"10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"}, Quorum: 2}, replogtest.NewStorage())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		api      http.Handler
		method   string
		path     string
		code     int
		location string
	}{
		{"Leader", fakeRedirect{code: 307, loc: "//10.0.0.2:5050"}, "DELETE", "/replog/members/12?x=1", 307, "//10.0.0.2:5050/replog/members/12?x=1"},
		{"LeaderList", fakeRedirect{code: 307, loc: "//10.0.0.2:5050"}, "GET", "/replog/members", 307, "//10.0.0.2:5050/replog/members"},
		{"NoLeader", fakeRedirect{code: 503}, "POST", "/replog/members", 503, ""},
		{"NotStarted", nil, "GET", "/replog/members", 503, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmin(n, 2)
			if tc.api != nil {
				a.setAPI(tc.api)
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"address":"10.0.0.4:5051"}`)))
			if rec.Code != tc.code || rec.Header().Get("Location") != tc.location {
				t.Errorf("%s %s = %d Location %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Location"), tc.code, tc.location)
			}
			if tc.code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		})
	}
}

func TestMembersCommands(t *testing.T) {
	t.Parallel()
	one := uint64(3)
	list := membersJSON{Leader: 7, Quorum: 2, ConfiguredQuorum: 2, Voters: 3, MaxVoters: 3, Members: []memberJSON{
		{Replica: 7, Address: "10.0.0.1:5051", Member: true, Voter: true, Listed: true, Leader: true, Self: true, Status: "VOTING", LearnedTo: &one, Lag: new(uint64), State: "voter"},
		{Replica: 8, Address: "10.0.0.4:5051", Member: true, Listed: true, Status: "RECOVERING", LearnedTo: new(uint64), Lag: &one, State: "non-voter (catching up)"},
		{Address: "10.0.0.5:5051", Listed: true, State: "listed (not connected)"},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && r.URL.Path == "/replog/members":
			writeAdminJSON(w, 200, list)
		case r.Method == "POST" && r.URL.Path == "/replog/members":
			var b addJSON
			_ = json.NewDecoder(r.Body).Decode(&b)
			if b.Address == "10.0.0.9:5051" {
				writeAdminJSON(w, 409, errorJSON{Error: "add master 10.0.0.9:5051: too many"})
				return
			}
			writeAdminJSON(w, 202, changeJSON{Message: "added " + b.Address})
		case r.Method == "DELETE" && r.URL.Path == "/replog/members/8":
			w.Header().Set("Retry-After", "1")
			writeAdminJSON(w, 503, errorJSON{Error: "no leader"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"List", []string{"members", "list", "-address", srv.URL}, 0, "non-voter (catching up)"},
		{"ListJSON", []string{"members", "list", "-json", "-address", srv.URL}, 0, `"max_voters": 3`},
		{"Add", []string{"members", "add", "-address", srv.URL, "10.0.0.4:5051"}, 0, "added 10.0.0.4:5051"},
		{"AddRefused", []string{"members", "add", "-address", srv.URL, "10.0.0.9:5051"}, 1, "409 Conflict: add master 10.0.0.9:5051: too many"},
		{"AddNoArgument", []string{"members", "add", "-address", srv.URL}, ExitUsage, "want exactly one ADDRESS"},
		{"AddBadAddress", []string{"members", "add", "-address", srv.URL, "nohost"}, ExitUsage, "not a peer address"},
		{"RemoveNoLeader", []string{"members", "remove", "-address", srv.URL, "8"}, ExitTempFail, "retry after 1s"},
		{"AddWaitTimesOut", []string{"members", "add", "-address", srv.URL, "-wait", "300ms", "10.0.0.5:5051"}, 1, "not a voter after 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.contains) {
				t.Errorf("regent %v = %d\nstdout:\n%s\nstderr:\n%s\nwant %d containing %q", tc.args, code, out, errOut, tc.code, tc.contains)
			}
		})
	}
}

func TestAdminURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ base, want string }{
		{"http://127.0.0.1:5050", "http://127.0.0.1:5050/replog/members"},
		{"127.0.0.1:5050", "http://127.0.0.1:5050/replog/members"},
		{"https://m.example:443/", "https://m.example:443/replog/members"},
	} {
		got, err := adminURL(tc.base, "/replog/members")
		if err != nil || got != tc.want {
			t.Errorf("adminURL(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
	if _, err := adminURL("http://", "/x"); err == nil {
		t.Errorf("adminURL(http://) succeeded, want an error")
	}
}

func TestWriteClusterView(t *testing.T) {
	t.Parallel()
	lag := uint64(0)
	st := &statusJSON{Replica: 8, Address: "10.0.0.4:5051", Role: "follower", Status: "RECOVERING", Begin: 3, End: 40, LearnedTo: 12,
		Voters: 3, Quorum: 2, ConfiguredQuorum: 2, Reachable: 1, Leader: 7, LeaderAddress: "10.0.0.1:5051",
		Masters: []string{"10.0.0.1:5051", "10.0.0.4:5051"}, RefusedByPeers: 2, LastRefusal: "replica 8 is not a member",
		Members: []memberJSON{{Replica: 8, Address: "10.0.0.4:5051", Self: true, Member: true, Status: "RECOVERING", LearnedTo: &lag, Lag: &lag, State: "non-voter (catching up)"}}}
	for _, tc := range []struct {
		name string
		v    clusterView
		want []string
	}{
		{"NoLeader", clusterView{Local: st, Error: "no leader: waiting for quorum"}, []string{
			"leader:      replica 7 at 10.0.0.1:5051",
			"this master: replica 8 at 10.0.0.4:5051: follower, RECOVERING, not a voter",
			"log:         begin 3, end 40, learned to 12, 0 in flight",
			"quorum:      2 of 3 voters (1 reachable; configured quorum 2)",
			"refusals:    0 sent, 2 received; last: replica 8 is not a member",
			"members (this master's view; no leader: waiting for quorum):",
			"    8        10.0.0.4:5051  non-voter,self  RECOVERING",
		}},
		{"LeadersView", clusterView{Local: st, Members: &membersJSON{Members: []memberJSON{{Replica: 7, Address: "10.0.0.1:5051", Member: true, Voter: true, Leader: true, State: "voter"}}}}, []string{
			"members (the leader's view):",
			"    7        10.0.0.1:5051  voter,leader  ?",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeClusterView(&b, "http://10.0.0.4:5050", tc.v)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("view lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestTidyRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"refused by peer: receive welcome: rpc error: code = PermissionDenied desc = replica 4 is refused: not listed", "refused by peer: replica 4 is refused: not listed"},
		{"refused: another cluster", "refused: another cluster"},
		{"odd", "odd"},
	} {
		if got := tidyRefusal(tc.in); got != tc.want {
			t.Errorf("tidyRefusal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
