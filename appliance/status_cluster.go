package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/replog"
)

// The cluster part of "regent status": what the local master (or the one
// -address names) says about the replicated log, then the leader's view of
// every member, through the /replog/ API (admin.go).

// statusTimeout bounds the cluster part of "regent status", so that a
// master that does not answer never hangs the command.
const statusTimeout = 5 * time.Second

// localAdminAddress is the local master's API URL from its configuration.
func localAdminAddress(c *Config) string {
	ip := c.Master.IP
	if ip == "" || net.ParseIP(ip) == nil || net.ParseIP(ip).IsUnspecified() {
		ip = "127.0.0.1"
	}
	port := c.Master.Port
	if port == 0 {
		port = 5050
	}
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(port))
}

// clusterView is what the cluster part of "regent status" shows.
type clusterView struct {
	Local   *statusJSON  `json:"local,omitempty"`   // the asked master's /replog/status
	Members *membersJSON `json:"members,omitempty"` // the leader's /replog/members
	Error   string       `json:"error,omitempty"`
}

// fetchClusterView asks the master at addr for its status and the leader for
// the members. A master that does not answer is reported in the error; a
// cluster without a leader still shows the local view.
func fetchClusterView(ctx context.Context, addr string) (clusterView, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	var v clusterView
	var st statusJSON
	if err := adminDo(ctx, http.MethodGet, addr, "/replog/status", nil, &st); err != nil {
		return v, err
	}
	v.Local = &st
	var ms membersJSON
	if err := adminDo(ctx, http.MethodGet, addr, "/replog/members", nil, &ms); err != nil {
		var ae *adminError
		if errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable {
			v.Error = "no leader: " + ae.Reason
		} else {
			v.Error = err.Error()
		}
		return v, nil
	}
	v.Members = &ms
	return v, nil
}

// writeClusterView prints v for people.
func writeClusterView(w io.Writer, addr string, v clusterView) {
	st := v.Local
	fmt.Fprintf(w, "\ncluster (asked %s):\n", addr)
	leader := "none known"
	if st.Leader != 0 {
		leader = fmt.Sprintf("replica %d at %s", st.Leader, st.LeaderAddress)
	}
	fmt.Fprintf(w, "  leader:      %s\n", leader)
	self := fmt.Sprintf("replica %d at %s: %s, %s", st.Replica, st.Address, st.Role, st.Status)
	if !st.Voter {
		self += ", not a voter"
	}
	if st.Catchup != nil {
		self += ", " + st.Catchup.String()
	}
	fmt.Fprintf(w, "  this master: %s\n", self)
	fmt.Fprintf(w, "  log:         begin %d, end %d, learned to %d, %d in flight\n", st.Begin, st.End, st.LearnedTo, st.InFlight)
	fmt.Fprintf(w, "  quorum:      %d of %d voters (%d reachable; configured quorum %d)\n", st.Quorum, st.Voters, st.Reachable, st.ConfiguredQuorum)
	if st.Role == "coordinator" {
		fmt.Fprintf(w, "  lease:       %s left\n", time.Duration(st.LeaseRemainingMS)*time.Millisecond)
	}
	fmt.Fprintf(w, "  masters:     %v\n", st.Masters)
	if st.Refused+st.RefusedByPeers > 0 {
		fmt.Fprintf(w, "  refusals:    %d sent, %d received", st.Refused, st.RefusedByPeers)
		if st.LastRefusal != "" {
			fmt.Fprintf(w, "; last: %s", st.LastRefusal)
		}
		fmt.Fprintln(w)
	}
	if st.Error != "" {
		fmt.Fprintf(w, "  error:       %s\n", st.Error)
	}
	members := st.Members
	if v.Members != nil {
		members = v.Members.Members
		fmt.Fprintf(w, "  members (the leader's view):\n")
	} else {
		fmt.Fprintf(w, "  members (this master's view; %s):\n", v.Error)
	}
	writeMembers(&indentWriter{w: w, prefix: "    "}, members)
	for _, m := range st.Members {
		if m.Refusal != "" {
			fmt.Fprintf(w, "  %s %s\n", m.Address, tidyRefusal(m.Refusal))
		}
	}
}

// indentWriter prefixes every line written through it.
type indentWriter struct {
	w      io.Writer
	prefix string
	mid    bool // inside a line
}

// Write implements io.Writer.
func (iw *indentWriter) Write(p []byte) (int, error) {
	for i, b := range p {
		if !iw.mid {
			if _, err := io.WriteString(iw.w, iw.prefix); err != nil {
				return i, err
			}
		}
		if _, err := iw.w.Write([]byte{b}); err != nil {
			return i, err
		}
		iw.mid = b != '\n'
	}
	return len(p), nil
}

// tidyRefusal drops the transport's wrapping ("receive welcome: rpc error:
// code = PermissionDenied desc = ") from a refusal, keeping who refused and
// the reason.
func tidyRefusal(r string) string {
	head, rest, ok := strings.Cut(r, ": ")
	if !ok {
		return r
	}
	if _, reason, ok := strings.Cut(rest, "desc = "); ok {
		return head + ": " + reason
	}
	return r
}

// catchupJSON is the "catchup" object of GET /replog/status, present while
// the replica catches up from a VOTING replica (replog.CatchupProgress).
type catchupJSON struct {
	Peer      uint64 `json:"peer,string"`
	From      uint64 `json:"from"`       // learned position when the catch-up began
	Target    uint64 `json:"target"`     // the position it catches up to
	LearnedTo uint64 `json:"learned_to"` // the learned position now
	Done      uint64 `json:"done"`       // positions learned since it began
	Total     uint64 `json:"total"`      // positions from its beginning to its target
	Requests  int    `json:"requests"`   // catch-up requests in flight
	// Rate is the positions learned per second over the last 5 s, ETAMS
	// the time left at that rate; both zero until measured.
	Rate      float64 `json:"positions_per_second"`
	ETAMS     int64   `json:"eta_ms"`
	ElapsedMS int64   `json:"elapsed_ms"`
}

// toCatchupJSON is p for GET /replog/status at now, nil when no catch-up is
// in progress.
func toCatchupJSON(p replog.CatchupProgress, now time.Time) *catchupJSON {
	if !p.Active {
		return nil
	}
	return &catchupJSON{
		Peer: uint64(p.Peer), From: uint64(p.From), Target: uint64(p.Target), LearnedTo: uint64(p.LearnedTo),
		Done: p.Done(), Total: p.Total(), Requests: p.Requests, Rate: p.Rate, ETAMS: p.ETA.Milliseconds(),
		ElapsedMS: now.Sub(p.Started).Milliseconds(),
	}
}

// String returns the progress for people: "catching up 45 % (450,000 /
// 1,000,000, 31,000/s, ETA 18 s) from replica 7".
func (c *catchupJSON) String() string {
	pct := uint64(0)
	if c.Total > 0 {
		pct = c.Done * 100 / c.Total
	}
	rate := "rate not yet known"
	if c.Rate > 0 {
		rate = fmt.Sprintf("%s/s, ETA %s", groupDigits(uint64(c.Rate+0.5)), roughDuration(time.Duration(c.ETAMS)*time.Millisecond))
	}
	return fmt.Sprintf("catching up %d %% (%s / %s, %s) from replica %d", pct, groupDigits(c.Done), groupDigits(c.Total), rate, c.Peer)
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// roughDuration writes d to the second (to the minute above an hour):
// "18 s", "4 min 05 s", "2 h 07 min".
func roughDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	default:
		m := (s + 30) / 60
		return fmt.Sprintf("%d h %02d min", m/60, m%60)
	}
}
