package paxos

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata scripts")

// TestScripts runs every testdata/*.txt script. A script is a list of
// blocks: a command line, a "----" line, and the expected output up to a
// blank line. Lines starting with # between blocks are comments.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScript(t, f)
		})
	}
}

// scriptBlock is one command of a script.
type scriptBlock struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseScript(t *testing.T, path string) []scriptBlock {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []scriptBlock
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		if strings.HasPrefix(l, "#") {
			comments = append(comments, l)
			continue
		}
		b := scriptBlock{comments: comments, cmd: strings.TrimSpace(l), line: i + 1}
		comments = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, i+1)
		}
		i += 2
		var out []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		if len(out) > 0 {
			b.want = strings.Join(out, "\n") + "\n"
		}
		blocks = append(blocks, b)
	}
	return blocks
}

func runScript(t *testing.T, path string) {
	blocks := parseScript(t, path)
	var failed []string
	fail := func(format string, args ...any) { failed = append(failed, fmt.Sprintf(format, args...)) }
	s := &scriptRunner{t: t, fail: fail}
	var b strings.Builder
	for i := range blocks {
		blk := &blocks[i]
		got := s.run(blk.cmd)
		if len(failed) > 0 {
			t.Fatalf("%s:%d: %s: invariant broken: %s", path, blk.line, blk.cmd, strings.Join(failed, "; "))
		}
		if *rewrite {
			blk.want = got
		} else if diff := cmp.Diff(blk.want, got); diff != "" {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s\ndiff (-want +got):\n%s", path, blk.line, blk.cmd, got, blk.want, diff)
		}
		for _, c := range blk.comments {
			b.WriteString(c + "\n")
		}
		b.WriteString(blk.cmd + "\n----\n" + blk.want + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptRunner executes script commands against a cluster.
type scriptRunner struct {
	t    *testing.T
	fail func(string, ...any)
	cl   *cluster
	held []envelope
}

// args parses "k=v" words.
func args(words []string) map[string]string {
	m := map[string]string{}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		m[k] = v
	}
	return m
}

func ids(s string) []ReplicaID {
	var out []ReplicaID
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		n, _ := strconv.ParseUint(f, 10, 64)
		out = append(out, ReplicaID(n))
	}
	return out
}

func atoi(s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func (s *scriptRunner) node(a map[string]string) *node {
	id := ids(a["id"])
	if len(id) != 1 || s.cl.nodes[id[0]] == nil {
		s.fail("no such replica %q", a["id"])
		return nil
	}
	return s.cl.nodes[id[0]]
}

func (s *scriptRunner) run(line string) string {
	words := strings.Fields(line)
	a := args(words[1:])
	var out strings.Builder
	if s.cl != nil {
		s.cl.out = &out
	}
	msgMatch := func(e envelope) bool {
		if f := a["from"]; f != "" && !slices.Contains(ids(f), e.m.From) {
			return false
		}
		if f := a["to"]; f != "" && !slices.Contains(ids(f), e.to) {
			return false
		}
		if f := a["type"]; f != "" && !strings.Contains(e.m.Type.String(), f) {
			return false
		}
		return true
	}
	switch words[0] {
	case "add-replicas":
		if s.cl == nil {
			cfg := Config{
				Quorum:         atoi(a["quorum"], 2),
				AutoInitialize: a["auto-init"] != "false",
				Expected:       atoi(a["expected"], 0),
				HeartbeatTicks: 1,
				LeaseTicks:     atoi(a["lease"], 5),
				RetryTicks:     atoi(a["retry"], 3),
				Window:         atoi(a["window"], 16),
				MaxBatchBytes:  atoi(a["max-batch-bytes"], 1<<20),
				noPreVote:      a["pre-vote"] == "false",
			}
			s.cl = newCluster(cfg, s.fail)
			s.cl.out = &out
		}
		for _, id := range ids(a["ids"]) {
			s.cl.add(id)
		}
	case "set":
		if q := a["quorum"]; q != "" {
			s.cl.cfg.Quorum = atoi(q, 1)
			for _, n := range s.cl.nodes {
				n.cfg.Quorum = s.cl.cfg.Quorum
			}
		}
	case "campaign":
		if n := s.node(a); n != nil {
			if err := n.core.Campaign(); err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
			}
			s.cl.process(n)
		}
	case "propose", "truncate", "snapshot":
		n := s.node(a)
		if n == nil {
			break
		}
		var es []Entry
		switch words[0] {
		case "propose":
			for _, d := range strings.Split(a["data"], ",") {
				es = append(es, Entry{Type: EntryAppend, Data: []byte(d)})
			}
		case "truncate":
			es = []Entry{{Type: EntryTruncate, To: Position(atoi(a["to"], 0))}}
		case "snapshot":
			es = []Entry{{Type: EntrySnapshot, Data: []byte(a["data"])}}
		}
		first, err := n.core.Propose(es)
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
		} else {
			fmt.Fprintf(&out, "first=%d\n", first)
		}
		s.cl.process(n)
	case "change":
		n := s.node(a)
		if n == nil {
			break
		}
		var ch MembershipChange
		switch {
		case a["add"] != "":
			ch = MembershipChange{Type: AddNonVoter, ID: ids(a["add"])[0], Addr: "r" + a["add"] + ":5051"}
		case a["promote"] != "":
			ch = MembershipChange{Type: Promote, ID: ids(a["promote"])[0]}
		case a["remove"] != "":
			ch = MembershipChange{Type: Remove, ID: ids(a["remove"])[0]}
		}
		p, err := n.core.ChangeMembership(ch)
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
		} else {
			fmt.Fprintf(&out, "position=%d\n", p)
		}
		s.cl.process(n)
	case "demote":
		if n := s.node(a); n != nil {
			n.core.Demote()
			s.cl.process(n)
		}
	case "deliver":
		var pick []envelope
		var keep []envelope
		for _, e := range s.cl.net {
			if msgMatch(e) {
				pick = append(pick, e)
			} else {
				keep = append(keep, e)
			}
		}
		s.cl.net = keep
		for _, e := range pick {
			s.cl.net = append([]envelope{e}, s.cl.net...)
			s.cl.deliverOne(0)
		}
	case "drop":
		n := len(s.cl.net)
		s.cl.net = slices.DeleteFunc(s.cl.net, msgMatch)
		fmt.Fprintf(&out, "dropped %d\n", n-len(s.cl.net))
	case "hold":
		// hold takes matching messages off the network until release.
		n := len(s.cl.net)
		for _, e := range s.cl.net {
			if msgMatch(e) {
				s.held = append(s.held, e)
			}
		}
		s.cl.net = slices.DeleteFunc(s.cl.net, msgMatch)
		fmt.Fprintf(&out, "held %d\n", n-len(s.cl.net))
	case "release":
		s.cl.net = append(s.cl.net, s.held...)
		fmt.Fprintf(&out, "released %d\n", len(s.held))
		s.held = nil
	case "print-net":
		for _, e := range s.cl.net {
			fmt.Fprintf(&out, "%d->%d %s\n", e.m.From, e.to, formatMessage(e.m))
		}
	case "partition":
		// partition 1|2,3: no message crosses between groups.
		groups := strings.Split(words[1], "|")
		clear(s.cl.cut)
		for i, g := range groups {
			for j, h := range groups {
				if i == j {
					continue
				}
				for _, x := range ids(g) {
					for _, y := range ids(h) {
						s.cl.cut[[2]ReplicaID{x, y}] = true
					}
				}
			}
		}
	case "heal":
		clear(s.cl.cut)
	case "crash":
		if n := s.node(a); n != nil {
			s.cl.crash(n.id)
		}
	case "restart":
		id := ids(a["id"])[0]
		s.cl.restart(id)
	case "wipe":
		if n := s.node(a); n != nil {
			s.cl.wipe(n.id, ids(a["new"])[0])
		}
	case "tick":
		for range atoi(a["n"], 1) {
			s.cl.tick()
			if a["deliver"] != "false" {
				s.cl.stabilize()
			}
		}
	case "stabilize":
		s.cl.stabilize()
	case "print-log":
		list := ids(a["ids"])
		if len(list) == 0 {
			list = s.cl.order
		}
		for _, id := range list {
			out.WriteString(s.cl.printLog(id))
		}
	case "print-durable":
		// What a crash now would keep: the synced state only.
		list := ids(a["ids"])
		if len(list) == 0 {
			list = s.cl.order
		}
		for _, id := range list {
			out.WriteString(s.cl.printDurable(id))
		}
	case "syncs":
		// Batches with durable parts since the node started, and how many
		// of them were synced.
		if n := s.node(a); n != nil {
			fmt.Fprintf(&out, "batches=%d synced=%d\n", n.batches, n.synced)
		}
	case "status":
		n := s.node(a)
		if n == nil || n.down {
			break
		}
		st := n.core.Status()
		fmt.Fprintf(&out, "status=%s role=%s leader=%d lease=%d learned-to=%d in-flight=%d member=%v voter=%v refused=%d refused-by-peers=%d\n",
			trimStatus(st.Status), trimRole(st.Role), st.Leader, st.LeaseRemaining, st.LearnedTo, st.InFlight, st.Member, st.Voter, st.Refused, st.RefusedByPeers)
	default:
		s.fail("unknown command %q", words[0])
	}
	if out.Len() == 0 {
		return "ok\n"
	}
	return out.String()
}

func formatMessage(m Message) string {
	s := fmt.Sprintf("%v p=%d.%d pos=%d begin=%d end=%d", m.Type, m.Proposal.Round, m.Proposal.Replica, m.Position, m.Begin, m.End)
	if m.Result != 0 {
		s += " " + m.Result.String()
	}
	if m.Implicit {
		s += " implicit"
	}
	for _, a := range m.Actions {
		s += fmt.Sprintf(" [%d %s]", a.Position, formatEntry(a.Entry))
	}
	return s
}
