package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a bytes.Buffer safe for the relay goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestExecLauncher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   string
		wantExit Exit
		wantMsgs []Message
		wantTail []string // substrings, in order
	}{
		{
			name:     "ready, reason and exit code",
			script:   "print hello;ready;reason lost quorum;exit 3",
			wantExit: Exit{Code: 3},
			wantMsgs: []Message{{Kind: MessageReady}, {Kind: MessageReason, Text: "lost quorum"}},
			wantTail: []string{"hello"},
		},
		{
			name:     "exit config",
			script:   "reason replica id mismatch;exit 78",
			wantExit: Exit{Code: ExitConfig},
			wantMsgs: []Message{{Kind: MessageReason, Text: "replica id mismatch"}},
		},
		{
			name:     "killed by a signal",
			script:   "ready;selfkill",
			wantExit: Exit{Code: -1, Signal: syscall.SIGKILL},
			wantMsgs: []Message{{Kind: MessageReady}},
		},
		{
			name:     "panic",
			script:   "print before;panic",
			wantExit: Exit{Code: 2},
			wantTail: []string{"before", "panic: boom", "goroutine "},
		},
		{
			name:     "systemd variables are not inherited",
			script:   "env NOTIFY_SOCKET;env WATCHDOG_USEC;env REGENT_HEARTBEAT_USEC",
			wantExit: Exit{Code: 0},
			wantTail: []string{"NOTIFY_SOCKET=\n", "WATCHDOG_USEC=\n", "REGENT_HEARTBEAT_USEC=7500000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := helperConfig(tt.script)
			cfg.Env = append(cfg.Env, "NOTIFY_SOCKET=@nowhere", "WATCHDOG_USEC=1000000")
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.launcher.Start(t.Context())
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			var msgs []Message
			for m := range p.Notify() {
				if m.Kind != MessageHeartbeat {
					msgs = append(msgs, m)
				}
			}
			<-p.Done()
			if diff := cmp.Diff(tt.wantExit, p.Exit()); diff != "" {
				t.Errorf("script %q: exit (-want +got):\n%s", tt.script, diff)
			}
			if diff := cmp.Diff(tt.wantMsgs, msgs); diff != "" {
				t.Errorf("script %q: messages (-want +got):\n%s", tt.script, diff)
			}
			tail := strings.Join(p.Tail(), "\n") + "\n"
			rest := tail
			for _, want := range tt.wantTail {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("script %q: tail\n%s\nlacks %q (in order)", tt.script, tail, want)
					break
				}
				rest = rest[i+len(want):]
			}
			if err := p.Kill(); err != nil {
				t.Errorf("Kill after reap = %v, want nil", err)
			}
		})
	}
}

func TestExecRelaysLogs(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	cfg := helperConfig("json;print plain line;panic")
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &out, JSONFormat: true, Level: hclog.Trace})
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.launcher.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for range p.Notify() {
	}
	<-p.Done()
	type line struct {
		Level, Message, Module string
		Position               any
		Peer                   string
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("relay wrote a non-JSON line %q: %v", l, err)
		}
		got = append(got, line{
			Level:    m["@level"].(string),
			Message:  m["@message"].(string),
			Module:   m["@module"].(string),
			Position: m["position"],
			Peer:     str(m["peer"]),
		})
	}
	if len(got) < 4 {
		t.Fatalf("relayed %d lines, want at least 4:\n%s", len(got), out.String())
	}
	want := []line{
		{Level: "warn", Message: "lost quorum", Module: "master.replog", Position: float64(42), Peer: "10.0.0.2:5051"},
		{Level: "info", Message: "plain line", Module: "master"},
		{Level: "error", Message: "panic: boom", Module: "master"},
	}
	if diff := cmp.Diff(want, got[:3]); diff != "" {
		t.Errorf("relayed lines (-want +got):\n%s", diff)
	}
	for _, l := range got[3:] {
		if l.Level != "error" {
			t.Errorf("line %q after the panic relayed at %s, want error", l.Message, l.Level)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// listenNotify listens on a unixgram socket standing in for systemd's and
// returns its address and the channel of datagrams it receives.
func listenNotify(t testing.TB, abstract bool) (string, <-chan string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = "@regent-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	ch := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return name, ch
}

func TestSDNotify(t *testing.T) {
	t.Parallel()
	for _, abstract := range []bool{false, true} {
		t.Run("abstract="+strconv.FormatBool(abstract), func(t *testing.T) {
			t.Parallel()
			sock, ch := listenNotify(t, abstract)
			if err := sdNotify(sock, "READY=1\nSTATUS=ok"); err != nil {
				t.Fatalf("sdNotify(%q) = %v", sock, err)
			}
			if got := <-ch; got != "READY=1\nSTATUS=ok" {
				t.Errorf("got datagram %q", got)
			}
		})
	}
	if err := sdNotify("", "READY=1"); err != nil {
		t.Errorf("sdNotify without a socket = %v, want nil", err)
	}
}

// TestSupervisedChildNotifiesSystemd runs a real supervisor over real
// helper children and checks what a fake systemd receives.
func TestSupervisedChildNotifiesSystemd(t *testing.T) {
	t.Parallel()
	sock, ch := listenNotify(t, true)
	state := filepath.Join(t.TempDir(), "supervisor.json")
	cfg := helperConfig("ready;sleep 100ms;reason lost leadership;exit 1")
	cfg.Env = append(cfg.Env, "NOTIFY_SOCKET="+sock)
	cfg.StatePath = state
	cfg.Policy.MaxRestarts = 1
	cfg.Signals = make(chan os.Signal)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: tWriter{t}, Level: hclog.Debug})
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(t.Context())
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Run = %v, want ErrGaveUp", err)
	}
	var got []string
	for len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "STATUS=gave_up") {
		select {
		case d := <-ch:
			got = append(got, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("no gave_up STATUS= within 10s; got %q", got)
		}
	}
	var ready, running, gaveUp int
	for _, d := range got {
		switch {
		case d == "READY=1":
			ready++
		case strings.HasPrefix(d, "STATUS=running, pid "):
			running++
		case strings.HasPrefix(d, "STATUS=gave_up, 1 restarts, last exit: exit code 1 (lost leadership)"):
			gaveUp++
		}
	}
	if ready != 2 || running != 2 || gaveUp != 1 {
		t.Errorf("datagrams %q: want READY=1 twice, two running STATUS= and one gave_up", got)
	}
	st, err := ReadStatus(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateGaveUp || st.LastReason != "lost leadership" || st.Restarts != 1 {
		t.Errorf("state file = %+v", st)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

// startHelperSupervisor starts the test binary as a supervisor of helper
// children running script.
func startHelperSupervisor(t *testing.T, script string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "supervisor.json")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=supervisor", envScript+"="+script, envState+"="+state)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: its exit status is not the point
	})
	return cmd, state
}

// poll calls f until it returns true or the deadline passes.
func poll(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether pid no longer runs (absent or a zombie).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

func runningChild(t *testing.T, state string) int {
	t.Helper()
	var pid int
	poll(t, 10*time.Second, "child running", func() bool {
		st := readState(state)
		pid = st.ChildPID
		return st.State == StateRunning
	})
	return pid
}

func TestLifelineKillsOrphan(t *testing.T) {
	t.Parallel()
	cmd, state := startHelperSupervisor(t, "ready;hang")
	pid := runningChild(t, state)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Second, "child gone after SIGKILL of its supervisor", func() bool { return gone(pid) })
}

func TestLifelineEOFWithoutParentDeathSignal(t *testing.T) {
	// Not parallel: it sets the child-side environment of this process.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	nr, nw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	// ChildFromEnv takes ownership of the fds named in the environment.
	lfd, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	nfd, err := syscall.Dup(int(nw.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	nw.Close()
	t.Setenv(EnvLifelineFD, strconv.Itoa(lfd))
	t.Setenv(EnvNotifyFD, strconv.Itoa(nfd))
	t.Setenv(EnvHeartbeatUSec, "250000")
	lost := make(chan struct{})
	c, err := ChildFromEnv(func() { close(lost) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Supervised() || c.HeartbeatInterval() != 250*time.Millisecond {
		t.Errorf("Supervised() = %v, HeartbeatInterval() = %v", c.Supervised(), c.HeartbeatInterval())
	}
	if err := c.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := c.Reason("a\nb"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := nr.Read(buf)
	if got := string(buf[:n]); got != "READY=1\nREASON=a b\n" {
		t.Errorf("notify pipe got %q", got)
	}
	select {
	case <-lost:
		t.Fatal("lifeline reported lost while the write end is open")
	default:
	}
	w.Close()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("lifeline EOF not noticed")
	}
	<-c.Lost()
}

func TestRealSignals(t *testing.T) {
	t.Parallel()
	t.Run("SIGHUP forwarded, SIGTERM stops", func(t *testing.T) {
		t.Parallel()
		hup := filepath.Join(t.TempDir(), "hup")
		cmd, state := startHelperSupervisor(t, "ready;serve", envHupFile+"="+hup)
		pid := runningChild(t, state)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("signal SIGHUP: %v", err)
		}
		poll(t, 10*time.Second, "SIGHUP reached the child", func() bool {
			b, _ := os.ReadFile(hup)
			return string(b) == "hup\n"
		})
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("signal SIGTERM: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("supervisor exited with %v, want 0", err)
		}
		if !gone(pid) {
			t.Error("child still running after the supervisor stopped")
		}
		st := readState(state)
		if st.State != StateStopped || st.LastExitCode != 0 || st.LastReason != "stopped on SIGTERM" {
			t.Errorf("state = %+v, want stopped with exit 0 and the child's reason", st)
		}
	})
	t.Run("SIGKILL after the stop timeout", func(t *testing.T) {
		t.Parallel()
		cmd, state := startHelperSupervisor(t, "ready;hang", envStop+"=200ms")
		pid := runningChild(t, state)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatalf("signal SIGINT: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("supervisor exited with %v, want 0", err)
		}
		if !gone(pid) {
			t.Error("child still running after the supervisor stopped")
		}
		if st := readState(state); st.LastSignal != "SIGKILL" {
			t.Errorf("state = %+v, want the child killed by SIGKILL", st)
		}
	})
	t.Run("exit 78 ends the supervisor with 78", func(t *testing.T) {
		t.Parallel()
		cmd, _ := startHelperSupervisor(t, "reason bad config;exit 78")
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitConfig {
			t.Fatalf("supervisor exited with %v, want 78", err)
		}
	})
}

func TestExecLauncherStartFails(t *testing.T) {
	t.Parallel()
	l := &ExecLauncher{Path: filepath.Join(t.TempDir(), "no-such-binary")}
	if p, err := l.Start(t.Context()); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start of a missing binary = %v, %v; want an ErrNotExist error", p, err)
	}
}
