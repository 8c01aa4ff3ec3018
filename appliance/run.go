package appliance

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/supervisor"
)

// StateFileName is the supervisor's state file under work_dir, read by
// "regent status".
const StateFileName = "supervisor.json"

// cmdRun runs "regent run": the supervisor of one master. It loads the
// configuration, re-executes this binary as "regent master" with the same
// flags and keeps it running (restarts with backoff, systemd readiness and
// watchdog, reload, stop, hooks) until it is stopped, the master fails
// permanently (exit 78) or the restart budget is spent (exit 1).
func cmdRun(ctx context.Context, e *Env, args []string) int {
	c, cf, code, ok := e.configCommand(args)
	if !ok {
		return code
	}
	log := NewLogger(LogOptions{Name: "regent", Level: c.LogLevel, JSON: c.LogJSON, Output: e.Stderr})

	exe, err := os.Executable()
	if err != nil {
		log.Error("find own binary", "error", err)
		return ExitFailure
	}
	if err := os.MkdirAll(c.WorkDir, 0o750); err != nil {
		log.Error("create work_dir", "path", c.WorkDir, "error", err)
		return ExitConfig
	}
	sc, err := supervisorConfig(c, e.environ(), log)
	if err != nil {
		log.Error("supervisor configuration", "error", err)
		return ExitConfig
	}
	sc.Path = exe
	// The master gets exactly the flags run got, so it loads the same
	// configuration (and re-reads it itself on SIGHUP).
	sc.Args = append([]string{"master"}, args...)

	r := &reloader{e: e, cf: cf, current: c, log: log}
	sc.Reload = r.reload

	// SIGINT and SIGTERM cancel ctx (cmd/regent's main); SIGHUP is the
	// supervisor's, subscribed before it can report READY=1 so a reload
	// never kills it (Go's default action for SIGHUP is to exit).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sc.Signals = hup

	s, err := supervisor.New(sc)
	if err != nil {
		log.Error("supervisor configuration", "error", err)
		return ExitConfig
	}
	err = s.Run(ctx)
	if err != nil {
		log.Error("supervisor exiting", "error", err, "exit_code", supervisor.ExitCode(err))
	}
	return supervisor.ExitCode(err)
}

// supervisorConfig is the supervisor's runtime configuration: the
// supervisor block (Config.SupervisorConfig), the environment the master
// inherits, the state file under work_dir and the logger.
func supervisorConfig(c *Config, environ []string, log hclog.Logger) (supervisor.Config, error) {
	sc, err := c.SupervisorConfig()
	if err != nil {
		return sc, err
	}
	sc.Env = environ
	sc.StatePath = filepath.Join(c.WorkDir, StateFileName)
	sc.Logger = log
	if err := sc.Validate(); err != nil {
		return sc, err
	}
	return sc, nil
}

// reloader re-reads the configuration on SIGHUP for the supervisor.
type reloader struct {
	e   *Env
	cf  *configFlags
	log hclog.Logger

	mu      sync.Mutex
	current *Config
}

// reload loads and checks the configuration as run did at start. Invalid:
// the diagnostics, with their source snippets, are the error. Valid: the log
// level applies at once, and the master is restarted when a value it cannot
// reload changed, or sent SIGHUP otherwise.
func (r *reloader) reload(context.Context) (supervisor.ReloadAction, error) {
	l := Loader{Environ: r.e.environ(), Flags: r.cf.overrides}
	c, diags := l.Load(r.cf.configPath())
	if diags.HasErrors() {
		var b strings.Builder
		if err := c.WriteDiagnostics(&b, diags); err != nil {
			return 0, fmt.Errorf("reload: %s", diags.Error())
		}
		return 0, fmt.Errorf("reload: %s", strings.TrimSpace(b.String()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.current
	r.current = c
	if lvl := hclog.LevelFromString(c.LogLevel); lvl != hclog.NoLevel {
		r.log.SetLevel(lvl)
	}
	if !reflect.DeepEqual(old.Supervisor, c.Supervisor) {
		r.log.Warn("supervisor settings changed; they apply when regent run restarts")
	}
	if ReloadActionFor(old, c) == supervisor.ReloadRestart {
		r.log.Info("settings the master cannot reload changed", "settings", strings.Join(ChangedSettings(old, c), ","))
		return supervisor.ReloadRestart, nil
	}
	return supervisor.ReloadForward, nil
}
