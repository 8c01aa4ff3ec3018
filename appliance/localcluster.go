package appliance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regent-ha/regent/supervisor"
)

// localCluster is a set of regent appliances ("regent run") on loopback, each
// with its own configuration file and work_dir under one directory. "regent
// dev" runs one for a first look; the end-to-end tests run them to drive
// the real binary. It owns the child processes it starts: Stop and Kill end
// them, Wait reaps them.
type localCluster struct {
	// Binary is the regent executable to run.
	Binary string
	// Dir holds one configuration file and one work_dir per master.
	Dir string
	// Cluster is the cluster name written into every configuration.
	Cluster string
	// Output receives every master's log lines, prefixed with its name. Nil
	// discards them.
	Output io.Writer
	// Pretty renders the JSON log lines as short text lines.
	Pretty bool
	// Extra is HCL appended to the master block of every configuration.
	Extra string

	mu      sync.Mutex
	masters []*localMaster
}

// localMaster is one appliance of a localCluster.
type localMaster struct {
	Name     string // m1, m2, …
	APIPort  int
	PeerPort int
	Config   string // path of its configuration file
	WorkDir  string
	Quorum   int
	Masters  []string // peer addresses of the whole cluster (the whitelist)

	// Args are extra command-line flags given to "regent run".
	Args []string

	mu   sync.Mutex
	proc *localProc // the current (or last) process; nil before the first Start
	logs *lineRing
}

// localProc is one run of a master's appliance process.
type localProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // the process's exit, set before done is closed
}

// exited reports whether the process has been reaped.
func (p *localProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// running returns m's process if it has not exited, else nil.
func (m *localMaster) running() *localProc {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	return p
}

// APIURL returns the master's HTTP base URL.
func (m *localMaster) APIURL() string { return "http://127.0.0.1:" + strconv.Itoa(m.APIPort) }

// PeerAddr returns the master's peer address.
func (m *localMaster) PeerAddr() string { return "127.0.0.1:" + strconv.Itoa(m.PeerPort) }

// freePorts returns n distinct TCP ports free on 127.0.0.1 at the time of the
// call. They are held until all n are found, so they are distinct.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Add defines n more masters with free ports; quorum is the --quorum each is
// configured with, and the whitelist of every new master is the peer address
// of every master defined so far (the new ones included). It writes their
// configuration files and returns them; they are not started.
func (c *localCluster) Add(n, quorum int) ([]*localMaster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var added []*localMaster
	for i := range n {
		name := "m" + strconv.Itoa(len(c.masters)+1)
		m := &localMaster{
			Name:     name,
			APIPort:  ports[2*i],
			PeerPort: ports[2*i+1],
			Config:   filepath.Join(c.Dir, name+".hcl"),
			WorkDir:  filepath.Join(c.Dir, name),
			Quorum:   quorum,
			logs:     newLineRing(400),
		}
		c.masters = append(c.masters, m)
		added = append(added, m)
	}
	all := make([]string, 0, len(c.masters))
	for _, m := range c.masters {
		all = append(all, m.PeerAddr())
	}
	for _, m := range added {
		m.Masters = all
		if err := c.writeConfig(m); err != nil {
			return nil, err
		}
	}
	return added, nil
}

// Masters returns the masters defined so far.
func (c *localCluster) Masters() []*localMaster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*localMaster(nil), c.masters...)
}

// Reconfigure rewrites m's configuration with the given quorum and whitelist;
// it takes effect at m's next start.
func (c *localCluster) Reconfigure(m *localMaster, quorum int, masters []string) error {
	m.Quorum = quorum
	m.Masters = masters
	return c.writeConfig(m)
}

// writeConfig writes m's configuration file.
func (c *localCluster) writeConfig(m *localMaster) error {
	if err := os.MkdirAll(m.WorkDir, 0o700); err != nil {
		return fmt.Errorf("create work_dir: %w", err)
	}
	var quoted []string
	for _, a := range m.Masters {
		quoted = append(quoted, strconv.Quote(a))
	}
	text := fmt.Sprintf(`# %s of a local regent cluster (written by regent dev).
cluster   = %q
work_dir  = %q
log_level = "info"

master {
  quorum    = %d
  masters   = [%s]
  ip        = "127.0.0.1"
  port      = %d
  peer_port = %d
  hostname  = "127.0.0.1"
%s}

supervisor {
  stop_timeout    = "10s"
  min_uptime      = "1s"
  backoff_initial = "50ms"
  backoff_max     = "2s"
}
`, m.Name, c.Cluster, m.WorkDir, m.Quorum, strings.Join(quoted, ", "), m.APIPort, m.PeerPort, c.Extra)
	if err := os.WriteFile(m.Config, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	return nil
}

// Start starts m's appliance ("regent run -config <file>"). The process gets
// its own process group, so a terminal's Ctrl-C reaches only the caller, who
// stops the masters in order.
func (c *localCluster) Start(m *localMaster) error {
	args := append([]string{"run", "-config", m.Config}, m.Args...)
	return c.launch(m, exec.Command(c.Binary, args...))
}

// launch starts cmd as m's appliance process, in a process group of its own,
// relaying its output, and reaps it when it exits.
func (c *localCluster) launch(m *localMaster, cmd *exec.Cmd) error {
	if m.running() != nil {
		return fmt.Errorf("%s is already running", m.Name)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	p := &localProc{cmd: cmd, done: make(chan struct{})}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		c.relay(m, out)
	}()
	go func() {
		<-copied
		p.err = cmd.Wait()
		close(p.done)
	}()
	return nil
}

// relay copies m's output lines into the cluster's Output and m's ring.
func (c *localCluster) relay(m *localMaster, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		m.logs.add(line)
		if c.Output == nil {
			continue
		}
		if c.Pretty {
			line = prettyLogLine(line)
		}
		c.mu.Lock()
		fmt.Fprintf(c.Output, "%-3s | %s\n", m.Name, line)
		c.mu.Unlock()
	}
}

// Pid returns the supervisor's process ID, or 0 when it is not running.
func (m *localMaster) Pid() int {
	if p := m.running(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Signal sends sig to m's supervisor process.
func (m *localMaster) Signal(sig syscall.Signal) error {
	p := m.running()
	if p == nil {
		return fmt.Errorf("%s is not running", m.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// SignalGroup sends sig to m's whole process group: the supervisor and its
// master child.
func (m *localMaster) SignalGroup(sig syscall.Signal) error {
	p := m.running()
	if p == nil {
		return fmt.Errorf("%s is not running", m.Name)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// ChildPid returns the process ID of m's master child, from its
// supervisor's state file, or 0 when no child is running.
func (m *localMaster) ChildPid() int {
	if m.Pid() == 0 {
		return 0
	}
	st, err := supervisor.ReadStatus(filepath.Join(m.WorkDir, StateFileName))
	if err != nil || st.SupervisorPID != m.Pid() {
		return 0
	}
	return st.ChildPID
}

// SignalAll sends sig to m's supervisor and to its master child, which runs
// in a process group of its own: SIGSTOP through it pauses the whole
// appliance.
func (m *localMaster) SignalAll(sig syscall.Signal) error {
	if err := m.SignalGroup(sig); err != nil {
		return err
	}
	if pid := m.ChildPid(); pid != 0 {
		return syscall.Kill(-pid, sig)
	}
	return nil
}

// Wait waits until m's appliance has exited or ctx ends, and returns its exit.
func (m *localMaster) Wait(ctx context.Context) error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Logs returns m's last output lines.
func (m *localMaster) Logs() []string { return m.logs.lines() }

// Stop asks m's appliance to stop (SIGTERM) and waits for it, killing the
// process group after timeout.
func (m *localMaster) Stop(timeout time.Duration) error {
	p := m.running()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v; killed", m.Name, timeout)
	}
}

// Kill ends m's appliance and its master at once (SIGKILL to the group) and
// reaps it.
func (m *localMaster) Kill() {
	p := m.running()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// StopAll stops every running master, in parallel.
func (c *localCluster) StopAll(timeout time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Masters()))
	for i, m := range c.Masters() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Stop(timeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// leaderInfo is what /master/redirect tells about the leader.
type leaderInfo struct {
	Master   *localMaster // the leader, when it is one of ours
	Location string
}

// Leader asks m who leads: the Location of /master/redirect. ok is false when
// m answers that no leader is known or does not answer.
func (c *localCluster) Leader(ctx context.Context, m *localMaster) (leaderInfo, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL()+"/master/redirect", nil)
	if err != nil {
		return leaderInfo{}, false
	}
	resp, err := noRedirectClient.Do(req)
	if err != nil {
		return leaderInfo{}, false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		return leaderInfo{}, false
	}
	loc := resp.Header.Get("Location")
	li := leaderInfo{Location: loc}
	for _, o := range c.Masters() {
		if strings.HasSuffix(loc, ":"+strconv.Itoa(o.APIPort)) {
			li.Master = o
		}
	}
	return li, li.Master != nil
}

// WaitLeader polls the running masters until all that answer agree on one
// leader that is itself running, or ctx ends.
func (c *localCluster) WaitLeader(ctx context.Context) (*localMaster, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		votes := map[*localMaster]int{}
		running := 0
		for _, m := range c.Masters() {
			if m.Pid() == 0 {
				continue
			}
			running++
			if li, ok := c.Leader(ctx, m); ok && li.Master.Pid() != 0 {
				votes[li.Master]++
			}
		}
		if len(votes) == 1 {
			for l, n := range votes {
				if n == running {
					return l, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a leader: %w (votes %v)", ctx.Err(), describeVotes(votes))
		case <-tick.C:
		}
	}
}

func describeVotes(v map[*localMaster]int) string {
	var parts []string
	for m, n := range v {
		parts = append(parts, m.Name+"="+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// noRedirectClient does not follow redirects, so callers see 307s.
var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       5 * time.Second,
}

// lineRing keeps the last lines of a process's output.
type lineRing struct {
	mu   sync.Mutex
	max  int
	buf  []string
	next int
	full bool
}

func newLineRing(n int) *lineRing { return &lineRing{max: n, buf: make([]string, n)} }

func (r *lineRing) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % r.max
	if r.next == 0 {
		r.full = true
	}
}

func (r *lineRing) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.buf[:r.next]...)
	}
	return append(append([]string(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// prettyLogLine renders one hclog JSON line as "15:04:05.000 INFO  name: message k=v"; other lines are
// returned as they are.
func prettyLogLine(line string) string {
	if !strings.HasPrefix(line, "{") {
		return line
	}
	var rec map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber() // replica IDs are uint64: keep every digit
	if err := dec.Decode(&rec); err != nil {
		return line
	}
	ts, _ := rec["@timestamp"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	level, _ := rec["@level"].(string)
	module, _ := rec["@module"].(string)
	msg, _ := rec["@message"].(string)
	var keys []string
	for k := range rec {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s: %s", ts, strings.ToUpper(level), module, msg)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, rec[k])
	}
	return b.String()
}
