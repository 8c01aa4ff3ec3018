package appliance

import (
	"bytes"
	"context"
	_ "embed" // the unit template
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/kardianos/service"
)

// unitTemplate is the systemd unit shared by "regent service print-unit",
// "regent service install" and the packages (packaging/regent.service).
//
//go:embed unit.tmpl
var unitTemplate string

// serviceName is the systemd unit's name, without ".service".
const serviceName = "regent"

// packagedUnitPaths are where the deb and rpm install the unit. A unit there
// must not be shadowed by one "regent service install" writes to
// /etc/systemd/system.
var packagedUnitPaths = []string{
	"/usr/lib/systemd/system/regent.service",
	"/lib/systemd/system/regent.service",
}

// Margins between the supervisor's own timeouts and systemd's, so that
// systemd never kills a half-stopped master (style.md C10.5) nor gives up on a
// start the supervisor is still waiting for.
const (
	stopMargin  = 15 * time.Second
	startMargin = 30 * time.Second
)

// unitParams are the values the unit template is rendered with.
type unitParams struct {
	Binary    string // absolute path of the regent binary
	ConfigDir string // the -config path handed to "regent run"
	User      string
	Group     string
	// StopTimeout is the supervisor's stop_timeout; TimeoutStopSec is it
	// plus stopMargin.
	StopTimeout time.Duration
	// ReadyTimeout is the supervisor's ready_timeout; TimeoutStartSec is it
	// plus startMargin.
	ReadyTimeout time.Duration
	// Watchdog is WatchdogSec: the supervisor sends WATCHDOG=1 every half of
	// it.
	Watchdog time.Duration
}

// defaultUnitParams are the packaged unit's values: the binary in /usr/bin,
// the config directory /etc/regent.d, the system user regent and the
// supervisor's default timeouts.
func defaultUnitParams() unitParams {
	return unitParams{
		Binary:       "/usr/bin/regent",
		ConfigDir:    "/etc/regent.d",
		User:         "regent",
		Group:        "regent",
		StopTimeout:  30 * time.Second,
		ReadyTimeout: 120 * time.Second,
		Watchdog:     60 * time.Second,
	}
}

// validate rejects values that would make a broken or unsafe unit.
func (p unitParams) validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"binary", p.Binary}, {"config", p.ConfigDir}} {
		if !filepath.IsAbs(f.v) {
			errs = append(errs, fmt.Errorf("%s %q: must be an absolute path", f.name, f.v))
		}
		if strings.ContainsAny(f.v, " \t\n\"'\\$%;") {
			errs = append(errs, fmt.Errorf("%s %q: must not contain spaces, quotes or systemd specifiers", f.name, f.v))
		}
	}
	for _, f := range []struct{ name, v string }{{"user", p.User}, {"group", p.Group}} {
		if f.v == "" || strings.ContainsAny(f.v, " \t\n:") {
			errs = append(errs, fmt.Errorf("%s %q: must be a plain name", f.name, f.v))
		}
		if f.v == "root" {
			errs = append(errs, fmt.Errorf("%s: must not be root (the sandbox gives the service no capabilities)", f.name))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"stop-timeout", p.StopTimeout}, {"ready-timeout", p.ReadyTimeout}, {"watchdog", p.Watchdog}} {
		if f.v < time.Second || f.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be a whole number of seconds, at least 1s", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// renderUnit renders the unit template with p.
func renderUnit(p unitParams) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	tmpl, err := template.New("unit.tmpl").Option("missingkey=error").Parse(unitTemplate)
	if err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	data := struct {
		unitParams
		TimeoutStop, TimeoutStart, Watchdog string
	}{
		unitParams:   p,
		TimeoutStop:  systemdSeconds(p.StopTimeout + stopMargin),
		TimeoutStart: systemdSeconds(p.ReadyTimeout + startMargin),
		Watchdog:     systemdSeconds(p.Watchdog),
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	return b.Bytes(), nil
}

// systemdSeconds formats d as a systemd time span in whole seconds ("45s").
func systemdSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", d/time.Second)
}

// unitFlags adds the flags that change the rendered unit to fs and returns
// the parameters they fill in.
func unitFlags(fs *flag.FlagSet) *unitParams {
	p := defaultUnitParams()
	fs.StringVar(&p.Binary, "binary", p.Binary, "absolute path of the regent `binary` the unit starts")
	fs.StringVar(&p.ConfigDir, "config", p.ConfigDir, "configuration file or directory the unit passes to \"regent run\"")
	fs.StringVar(&p.User, "user", p.User, "system `user` the service runs as")
	fs.StringVar(&p.Group, "group", p.Group, "system `group` the service runs as")
	fs.DurationVar(&p.StopTimeout, "stop-timeout", p.StopTimeout, "the supervisor's stop_timeout; TimeoutStopSec is 15s more")
	fs.DurationVar(&p.ReadyTimeout, "ready-timeout", p.ReadyTimeout, "the supervisor's ready_timeout; TimeoutStartSec is 30s more")
	fs.DurationVar(&p.Watchdog, "watchdog", p.Watchdog, "WatchdogSec of the unit")
	return &p
}

// cmdServicePrintUnit runs "regent service print-unit": it prints the unit
// that the packages install and "regent service install" writes.
func cmdServicePrintUnit(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	p := unitFlags(fs)
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	unit, err := renderUnit(*p)
	if err != nil {
		return e.usageError("%v", err)
	}
	if _, err := e.Stdout.Write(unit); err != nil {
		fmt.Fprintf(e.Stderr, "regent service print-unit: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// cmdServiceInstall runs "regent service install": for installs from a
// tarball, it writes the same unit the packages ship to
// /etc/systemd/system/regent.service, enables it and, with -start, starts it.
func cmdServiceInstall(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	p := unitFlags(fs)
	if exe, err := os.Executable(); err == nil {
		if abs, err := filepath.EvalSymlinks(exe); err == nil {
			p.Binary = abs
		}
	}
	fs.Lookup("binary").DefValue = "this binary"
	start := fs.Bool("start", false, "start the service after installing it")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	unit, err := renderUnit(*p)
	if err != nil {
		return e.usageError("%v", err)
	}
	if err := installService(unit, *p, *start); err != nil {
		fmt.Fprintf(e.Stderr, "regent service install: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(e.Stdout, "installed and enabled %s.service (ExecStart=%s run -config %s)\n", serviceName, p.Binary, p.ConfigDir)
	return ExitOK
}

// cmdServiceUninstall runs "regent service uninstall": it stops and disables
// the service and removes the unit that "regent service install" wrote. It
// never touches a unit a package installed.
func cmdServiceUninstall(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if err := uninstallService(); err != nil {
		fmt.Fprintf(e.Stderr, "regent service uninstall: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(e.Stdout, "stopped, disabled and removed %s.service\n", serviceName)
	return ExitOK
}

// cmdServiceStatus runs "regent service status": it prints one word,
// running, stopped, failed or not-installed, and exits 0 only when running.
func cmdServiceStatus(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	s, err := newService(defaultUnitParams(), "")
	if err != nil {
		fmt.Fprintf(e.Stderr, "regent service status: %v\n", err)
		return ExitFailure
	}
	st, err := s.Status()
	word, code := statusWord(st, err)
	if word == "" {
		fmt.Fprintf(e.Stderr, "regent service status: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(e.Stdout, word)
	return code
}

// statusWord maps kardianos' answer to the word "regent service status"
// prints and its exit code (0 running, 3 not running, as systemctl is-active
// and LSB status do). An empty word means err is unexpected.
func statusWord(st service.Status, err error) (string, int) {
	const notRunning = 3
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return "not-installed", notRunning
	case err != nil && strings.Contains(err.Error(), "failed state"):
		// kardianos reports a failed unit only as this error's text.
		return "failed", notRunning
	case err != nil:
		return "", ExitFailure
	case st == service.StatusRunning:
		return "running", ExitOK
	case st == service.StatusStopped:
		return "stopped", notRunning
	}
	return "", ExitFailure
}

// noopProgram satisfies service.Interface. regent never calls Run through
// kardianos: the unit's ExecStart is "regent run", which talks to systemd
// itself (sd_notify, SIGHUP); kardianos only installs and queries the unit.
type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

// newService builds the kardianos service for the unit; unit, when not
// empty, is the SystemdScript it writes on Install. kardianos runs the script
// through text/template, so the rendered unit must hold no template action.
func newService(p unitParams, unit string) (service.Service, error) {
	if strings.Contains(unit, "{{") {
		return nil, errors.New("rendered unit contains a template action")
	}
	cfg := &service.Config{
		Name:        serviceName,
		DisplayName: serviceName,
		Description: "regent highly available master",
		Executable:  p.Binary,
		Arguments:   []string{"run", "-config", p.ConfigDir},
		Option:      service.KeyValue{},
	}
	if unit != "" {
		cfg.Option["SystemdScript"] = unit
	}
	s, err := service.New(noopProgram{}, cfg)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if s.Platform() != "linux-systemd" {
		return nil, fmt.Errorf("service: init system %q is not systemd; regent's unit needs systemd", s.Platform())
	}
	return s, nil
}

// installService checks that nothing would shadow or be shadowed, then
// writes, enables and optionally starts the unit.
func installService(unit []byte, p unitParams, start bool) error {
	for _, path := range packagedUnitPaths {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists: regent is installed from a package, which owns the unit; use \"systemctl enable --now regent\"", path)
		}
	}
	if _, err := user.Lookup(p.User); err != nil {
		return fmt.Errorf("user %q: %w (create it first: useradd --system --user-group --home-dir /var/lib/regent --shell /usr/sbin/nologin %s)", p.User, err, p.User)
	}
	if _, err := user.LookupGroup(p.Group); err != nil {
		return fmt.Errorf("group %q: %w", p.Group, err)
	}
	s, err := newService(p, string(unit))
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if start {
		if err := s.Start(); err != nil {
			return fmt.Errorf("start: %w", err)
		}
	}
	return nil
}

// uninstallService stops, disables and removes a unit "regent service
// install" wrote.
func uninstallService() error {
	s, err := newService(defaultUnitParams(), "")
	if err != nil {
		return err
	}
	if _, err := os.Stat("/etc/systemd/system/" + serviceName + ".service"); err != nil {
		return fmt.Errorf("uninstall: no unit installed by \"regent service install\": %w", err)
	}
	if st, err := s.Status(); err == nil && st == service.StatusRunning {
		if err := s.Stop(); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}
