package appliance

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/supervisor"
)

func TestSupervisorConfigConversion(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.WorkDir = "/var/lib/regent-test"
	c.Supervisor.MaxRestarts = 4
	c.Supervisor.StopTimeout = 7 * time.Second
	c.Supervisor.Notify = []NotifyConfig{
		{Name: "pager", Exec: []string{"/usr/local/bin/page", "regent"}, Events: []string{"fatal", "gave_up"}},
		{Name: "all", Exec: []string{"/bin/logger"}},
	}
	env := []string{"NOTIFY_SOCKET=/run/systemd/notify"}
	sc, err := supervisorConfig(c, env, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("supervisorConfig: %v", err)
	}
	wantPolicy := supervisor.Policy{
		MinUptime:         10 * time.Second,
		BackoffInitial:    100 * time.Millisecond,
		BackoffMax:        30 * time.Second,
		BackoffResetAfter: 60 * time.Second,
		MaxRestarts:       4,
		RestartWindow:     5 * time.Minute,
	}
	if diff := cmp.Diff(wantPolicy, sc.Policy); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	wantHooks := []supervisor.Hook{
		{Name: "pager", Exec: []string{"/usr/local/bin/page", "regent"}, Events: []supervisor.Event{supervisor.EventFatal, supervisor.EventGaveUp}},
		{Name: "all", Exec: []string{"/bin/logger"}},
	}
	if diff := cmp.Diff(wantHooks, sc.Hooks); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if sc.StopTimeout != 7*time.Second || sc.WatchdogTimeout != 30*time.Second || sc.ReadyTimeout != 120*time.Second {
		t.Errorf("timeouts = %v, %v, %v", sc.StopTimeout, sc.WatchdogTimeout, sc.ReadyTimeout)
	}
	if sc.StatePath != "/var/lib/regent-test/supervisor.json" || !cmp.Equal(sc.Env, env) {
		t.Errorf("state path %q, env %q", sc.StatePath, sc.Env)
	}

	c.Supervisor.Notify = []NotifyConfig{{Name: "bad", Exec: []string{"x"}, Events: []string{"crashed"}}}
	if _, err := supervisorConfig(c, nil, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), `notify "bad"`) {
		t.Errorf("unknown event: err = %v, want one naming the hook", err)
	}
}

func TestReloaderReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "regent.hcl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("work_dir = \"" + dir + "\"\nlog_level = \"info\"\n")
	cf := &configFlags{path: file, pathGiven: true}
	e := &Env{Environ: func() []string { return nil }}
	first, code, ok := (&Env{Environ: e.Environ, Stderr: &bytes.Buffer{}}).loadConfig(cf)
	if !ok {
		t.Fatalf("load: code %d", code)
	}
	log := hclog.New(&hclog.LoggerOptions{Output: &bytes.Buffer{}, Level: hclog.Info})
	r := &reloader{e: e, cf: cf, current: first, log: log}

	write("work_dir = \"" + dir + "\"\nlog_level = \"debug\"\n")
	if a, err := r.reload(t.Context()); err != nil || a != supervisor.ReloadForward {
		t.Errorf("log level change: reload = %v, %v; want forward", a, err)
	}
	if !log.IsDebug() {
		t.Error("log level change did not reach the logger")
	}

	write("work_dir = \"" + dir + "\"\nlog_level = \"debug\"\nmaster {\n  port = 6060\n}\n")
	if a, err := r.reload(t.Context()); err != nil || a != supervisor.ReloadRestart {
		t.Errorf("port change: reload = %v, %v; want restart", a, err)
	}

	write("work_dir = \"" + dir + "\"\nmaster {\n  prot = 6060\n}\n")
	_, err := r.reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "regent.hcl:3") || !strings.Contains(err.Error(), "prot") {
		t.Errorf("invalid file: reload err = %v, want the diagnostic with file, line and snippet", err)
	}
	if r.current.Master.Port != 6060 {
		t.Errorf("an invalid reload replaced the running configuration (port %d)", r.current.Master.Port)
	}
}

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, _ := runCLI(t, nil, "status", "--work_dir="+dir)
	if code != ExitNotRunning || !strings.Contains(out, "not running") {
		t.Errorf("no state file: code %d, out %q; want %d and not running", code, out, ExitNotRunning)
	}

	now := time.Now()
	st := &supervisor.Status{
		State:         supervisor.StateBackoff,
		SupervisorPID: os.Getpid(),
		ChildPID:      4242,
		Restarts:      3,
		StartedAt:     now.Add(-time.Minute),
		LastExit:      "exit code 1",
		LastExitCode:  1,
		LastReason:    "lost leadership",
		LastExitAt:    now.Add(-time.Second),
		NextStartAt:   now.Add(2 * time.Second),
		NextBackoff:   "2s",
		ReloadError:   "regent.hcl:3,3-7: Unsupported argument",
		LastOutput:    []string{"one", "two", "three"},
		UpdatedAt:     now,
	}
	if err := supervisor.WriteStatus(filepath.Join(dir, StateFileName), st); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "status", "--work_dir="+dir, "-lines=2")
	if code != ExitOK {
		t.Errorf("running supervisor: code %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"supervisor:  backoff\n",
		"restarts:    3\n",
		"next start:  in ",
		"last exit:   exit code 1: lost leadership, ",
		"reload failed:\n  regent.hcl:3,3-7: Unsupported argument\n",
		"  two\n  three\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "  one\n") {
		t.Errorf("-lines=2 printed more lines:\n%s", out)
	}

	code, out, _ = runCLI(t, nil, "status", "--work_dir="+dir, "-json")
	got, err := supervisor.ReadStatus(filepath.Join(dir, StateFileName))
	if code != ExitOK || err != nil || !strings.Contains(out, `"state": "backoff"`) || got.Restarts != 3 {
		t.Errorf("-json: code %d, out %q", code, out)
	}

	st.SupervisorPID = 0x7ffffff0 // no such process
	if err := supervisor.WriteStatus(filepath.Join(dir, StateFileName), st); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, nil, "status", "--work_dir="+dir)
	if code != ExitNotRunning || !strings.Contains(out, "not running (last state backoff") {
		t.Errorf("dead supervisor: code %d, out %q", code, out)
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"bad flag value", []string{"run", "--quorum=many"}, ExitConfig},
		{"relative work_dir", []string{"run", "--work_dir=relative"}, ExitConfig},
		{"stray argument", []string{"run", "extra"}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.want {
				t.Errorf("regent %s: code %d, want %d; stderr:\n%s", strings.Join(tt.args, " "), code, tt.want, errOut)
			}
		})
	}
}
