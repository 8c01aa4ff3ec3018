package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// "regent members list|add|remove" talk to a master's /replog/ API (see
// admin.go): the leader changes its whitelist at runtime and reconciles the
// log's membership toward it, one EntryConfig at a time.

// DefaultAdminAddress is where the members and status commands find a
// master when neither -address nor a configuration says otherwise.
const DefaultAdminAddress = "http://127.0.0.1:5050"

// adminClient follows the 307s of non-leading masters (Go resends the body
// of a POST or DELETE on a 307) and bounds each request.
var adminClient = &http.Client{Timeout: 15 * time.Second}

// addressFlag adds -address to fs.
func addressFlag(fs *flag.FlagSet) *string {
	return fs.String("address", DefaultAdminAddress, "`URL` of any master's API (a non-leading master redirects to the leader)")
}

// adminURL joins base and path; base may omit the scheme.
func adminURL(base, path string) (string, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("address %q is not a URL like http://127.0.0.1:5050", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String(), nil
}

// adminDo sends one request to a master's /replog/ API and decodes a JSON
// answer with a 2xx code into out. Other codes become errors carrying the
// master's reason.
func adminDo(ctx context.Context, method, base, path string, body any, out any) error {
	u, err := adminURL(base, path)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return &adminError{Code: resp.StatusCode, URL: resp.Request.URL.String(), Reason: adminReason(b), RetryAfter: resp.Header.Get("Retry-After")}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	}
	return nil
}

// adminError is a non-2xx answer of the admin API.
type adminError struct {
	Code       int
	URL        string
	Reason     string
	RetryAfter string
}

// Error implements error.
func (e *adminError) Error() string {
	s := fmt.Sprintf("%s answered %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.RetryAfter != "" {
		s += " (retry after " + e.RetryAfter + "s)"
	}
	return s
}

// adminReason extracts {"error": ...} from an answer, or returns it as text.
func adminReason(b []byte) string {
	var e errorJSON
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(b))
}

// adminFailed prints err for a command and returns its exit code: 1, or 75
// (EX_TEMPFAIL) when no leader is known yet and trying again may work.
func adminFailed(e *Env, cmd string, err error) int {
	fmt.Fprintf(e.Stderr, "%s: %v\n", cmd, err)
	var ae *adminError
	if errors.As(err, &ae) && ae.Code == http.StatusServiceUnavailable {
		return ExitTempFail
	}
	return ExitFailure
}

// ExitTempFail is what the members commands return when the cluster has no
// leader right now (sysexits EX_TEMPFAIL): retry later.
const ExitTempFail = 75

// cmdMembersList runs "regent members list": every member of the log as the
// leader sees it, with its status, learned position and lag.
func cmdMembersList(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	addr := addressFlag(fs)
	asJSON := fs.Bool("json", false, "print the leader's answer as JSON")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	var ms membersJSON
	if err := adminDo(ctx, http.MethodGet, *addr, "/replog/members", nil, &ms); err != nil {
		return adminFailed(e, "regent members list", err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ms); err != nil {
			return adminFailed(e, "regent members list", err)
		}
		return ExitOK
	}
	fmt.Fprintf(e.Stdout, "voters %d, quorum %d (configured quorum %d: at most %d voters)\n",
		ms.Voters, ms.Quorum, ms.ConfiguredQuorum, ms.MaxVoters)
	writeMembers(e.Stdout, ms.Members)
	return ExitOK
}

// writeMembers prints the members table.
func writeMembers(w io.Writer, ms []memberJSON) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tADDRESS\tROLE\tSTATUS\tLEARNED\tLAG\tHEARD\tCONNECTED\tSTATE")
	for _, m := range ms {
		id := "-"
		if m.Replica != 0 {
			id = strconv.FormatUint(m.Replica, 10)
		}
		role := "-"
		switch {
		case m.Member && m.Voter:
			role = "voter"
		case m.Member:
			role = "non-voter"
		}
		if m.Leader {
			role += ",leader"
		}
		if m.Self {
			role += ",self"
		}
		opt := func(p *uint64) string {
			if p == nil {
				return "?"
			}
			return strconv.FormatUint(*p, 10)
		}
		heard := "-"
		if m.HeardMS != nil {
			heard = (time.Duration(*m.HeardMS) * time.Millisecond).String()
		}
		status := m.Status
		if status == "" {
			status = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\n", id, m.Address, role, status, opt(m.LearnedTo), opt(m.Lag), heard, m.Connected, m.State)
	}
	_ = tw.Flush()
}

// cmdMembersAdd runs "regent members add ADDRESS": the leader adds the peer
// address to its whitelist; the master there joins as a non-voter and is
// promoted once caught up. With -wait it waits for the promotion.
func cmdMembersAdd(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	addr := addressFlag(fs)
	wait := fs.Duration("wait", 0, "wait up to this long until the new master is a voter (0: do not wait)")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("want exactly one ADDRESS (the new master's peer address host:port), got %d arguments", fs.NArg())
	}
	peer := fs.Arg(0)
	if err := checkAddress(peer); err != nil {
		return e.usageError("%v", err)
	}
	var ch changeJSON
	if err := adminDo(ctx, http.MethodPost, *addr, "/replog/members", addJSON{Address: peer}, &ch); err != nil {
		return adminFailed(e, "regent members add", err)
	}
	fmt.Fprintln(e.Stdout, ch.Message)
	if *wait <= 0 {
		return ExitOK
	}
	return waitMembers(ctx, e, "regent members add", *addr, *wait, "a voter", func(ms membersJSON) bool {
		for _, m := range ms.Members {
			if m.Address == peer && m.Member && m.Voter {
				return true
			}
		}
		return false
	})
}

// cmdMembersRemove runs "regent members remove REPLICA": the leader removes
// the master (by ReplicaID or peer address) from its whitelist and its
// replica from the membership. With -wait it waits until it is gone.
func cmdMembersRemove(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	addr := addressFlag(fs)
	wait := fs.Duration("wait", 0, "wait up to this long until the master has left the membership (0: do not wait)")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("want exactly one REPLICA (a replica id or a peer address host:port), got %d arguments", fs.NArg())
	}
	target := fs.Arg(0)
	var ch changeJSON
	if err := adminDo(ctx, http.MethodDelete, *addr, "/replog/members/"+url.PathEscape(target), nil, &ch); err != nil {
		return adminFailed(e, "regent members remove", err)
	}
	fmt.Fprintln(e.Stdout, ch.Message)
	if *wait <= 0 {
		return ExitOK
	}
	return waitMembers(ctx, e, "regent members remove", *addr, *wait, "gone", func(ms membersJSON) bool {
		for _, m := range ms.Members {
			if m.Member && (m.Address == target || strconv.FormatUint(m.Replica, 10) == target) {
				return false
			}
		}
		return true
	})
}

// waitMembers polls the leader's member list until done holds, printing
// each change of the list, or until d has passed.
func waitMembers(ctx context.Context, e *Env, cmd, addr string, d time.Duration, what string, done func(membersJSON) bool) int {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	last := ""
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var ms membersJSON
		err := adminDo(ctx, http.MethodGet, addr, "/replog/members", nil, &ms)
		if err == nil {
			var b strings.Builder
			for _, m := range ms.Members {
				fmt.Fprintf(&b, "  %s: %s\n", m.Address, m.State)
			}
			if s := b.String(); s != last {
				fmt.Fprintf(e.Stdout, "%s voters %d, quorum %d:\n%s", time.Now().Format("15:04:05"), ms.Voters, ms.Quorum, s)
				last = s
			}
			if done(ms) {
				fmt.Fprintf(e.Stdout, "done: %s\n", what)
				return ExitOK
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				fmt.Fprintf(e.Stderr, "%s: last error: %v\n", cmd, err)
			}
			fmt.Fprintf(e.Stderr, "%s: not %s after %v\n", cmd, what, d)
			return ExitFailure
		case <-tick.C:
		}
	}
}
