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
