package appliance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kardianos/service"
)

var updateUnit = flag.Bool("update", false, "rewrite packaging/regent.service from the unit template")

// packagedUnit is the checked-in unit the packages install.
var packagedUnit = filepath.Join("..", "packaging", "regent.service")

func TestPackagedUnitMatchesTemplate(t *testing.T) {
	got, err := renderUnit(defaultUnitParams())
	if err != nil {
		t.Fatal(err)
	}
	if *updateUnit {
		if err := os.WriteFile(packagedUnit, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(packagedUnit)
	if err != nil {
		t.Fatalf("%v (run go test ./appliance -run TestPackagedUnitMatchesTemplate -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the rendered unit.tmpl (-checked-in +rendered); run with -update:\n%s", packagedUnit, diff)
	}
}

// unitDirectives parses a unit into "Section.Key" -> values, in order.
func unitDirectives(t *testing.T, unit []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q: no '='", line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

func TestDefaultUnitDirectives(t *testing.T) {
	t.Parallel()
	unit, err := renderUnit(defaultUnitParams())
	if err != nil {
		t.Fatal(err)
	}
	d := unitDirectives(t, unit)
	// The contract with the supervisor and systemd (design.md §1–2) and the
	// sandbox; each is asserted so an edit to unit.tmpl cannot drop one
	// silently.
	want := map[string]string{
		"Service.Type":                     "notify",
		"Service.NotifyAccess":             "main",
		"Service.ExecStart":                "/usr/bin/regent run -config /etc/regent.d",
		"Service.ExecReload":               "/bin/kill -HUP $MAINPID",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "78",
		"Service.KillMode":                 "mixed",
		"Service.TimeoutStopSec":           "45s",
		"Service.TimeoutStartSec":          "150s",
		"Service.WatchdogSec":              "60s",
		"Service.LimitNOFILE":              "65536",
		"Service.User":                     "regent",
		"Service.Group":                    "regent",
		"Service.StateDirectory":           "regent",
		"Service.WorkingDirectory":         "/var/lib/regent",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.PrivateTmp":               "yes",
		"Service.PrivateDevices":           "yes",
		"Service.PrivateUsers":             "yes",
		"Service.NoNewPrivileges":          "yes",
		"Service.CapabilityBoundingSet":    "",
		"Service.RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6",
		"Service.SystemCallArchitectures":  "native",
		"Service.MemoryDenyWriteExecute":   "yes",
		"Service.UMask":                    "0077",
		"Service.ProcSubset":               "pid",
		"Service.ProtectProc":              "invisible",
		"Service.DevicePolicy":             "closed",
		"Install.WantedBy":                 "multi-user.target",
	}
	for key, v := range want {
		got := d[key]
		if len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", key, got, v)
		}
	}
	if got, want := d["Service.SystemCallFilter"], []string{"@system-service", "~@privileged"}; !cmp.Equal(got, want) {
		t.Errorf("SystemCallFilter = %q, want %q", got, want)
	}
	if _, ok := d["Service.IPAddressDeny"]; ok {
		t.Error("IPAddressDeny is set: the master must reach its peers")
	}
}

func TestRenderUnitParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(p *unitParams)
		want    map[string]string // directive -> value, when valid
		wantErr string
	}{
		{
			name:   "tarball install",
			change: func(p *unitParams) { p.Binary = "/usr/local/bin/regent"; p.ConfigDir = "/usr/local/etc/regent.hcl" },
			want: map[string]string{
				"Service.ExecStart": "/usr/local/bin/regent run -config /usr/local/etc/regent.hcl",
			},
		},
		{
			name:   "longer stop timeout",
			change: func(p *unitParams) { p.StopTimeout = 2 * time.Minute },
			want:   map[string]string{"Service.TimeoutStopSec": "135s"},
		},
		{
			name:   "other user",
			change: func(p *unitParams) { p.User, p.Group = "svc-regent", "svc" },
			want:   map[string]string{"Service.User": "svc-regent", "Service.Group": "svc"},
		},
		{name: "relative binary", change: func(p *unitParams) { p.Binary = "bin/regent" }, wantErr: "absolute path"},
		{name: "space in config", change: func(p *unitParams) { p.ConfigDir = "/etc/my regent" }, wantErr: "must not contain"},
		{name: "specifier in binary", change: func(p *unitParams) { p.Binary = "/opt/%i/regent" }, wantErr: "must not contain"},
		{name: "root", change: func(p *unitParams) { p.User = "root" }, wantErr: "must not be root"},
		{name: "empty group", change: func(p *unitParams) { p.Group = "" }, wantErr: "plain name"},
		{name: "fractional stop timeout", change: func(p *unitParams) { p.StopTimeout = 1500 * time.Millisecond }, wantErr: "whole number"},
		{name: "zero watchdog", change: func(p *unitParams) { p.Watchdog = 0 }, wantErr: "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := defaultUnitParams()
			tt.change(&p)
			unit, err := renderUnit(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("renderUnit(%+v) error = %v, want one containing %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("renderUnit(%+v): %v", p, err)
			}
			d := unitDirectives(t, unit)
			for key, v := range tt.want {
				if got := d[key]; len(got) != 1 || got[0] != v {
					t.Errorf("renderUnit(%+v): %s = %q, want [%q]", p, key, got, v)
				}
			}
		})
	}
}

// TestUnitSurvivesKardianosTemplate checks that the unit "regent service
// install" hands kardianos as SystemdScript comes out of kardianos'
// text/template pass byte for byte, so a tarball install gets exactly the
// packaged unit.
func TestUnitSurvivesKardianosTemplate(t *testing.T) {
	t.Parallel()
	unit, err := renderUnit(defaultUnitParams())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(unit, []byte("{{")) {
		t.Fatal("rendered unit contains a template action")
	}
	tmpl, err := template.New("").Parse(string(unit))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := tmpl.Execute(&got, struct{ Path string }{"/ignored"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(unit), got.String()); diff != "" {
		t.Errorf("kardianos' template pass changed the unit (-rendered +after):\n%s", diff)
	}
}

func TestPrintUnitCommand(t *testing.T) {
	t.Parallel()
	want, err := renderUnit(defaultUnitParams())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "default", args: nil, wantCode: ExitOK, wantStdout: string(want)},
		{name: "bad binary", args: []string{"-binary", "regent"}, wantCode: ExitUsage, wantStderr: "absolute path"},
		{name: "extra argument", args: []string{"now"}, wantCode: ExitUsage, wantStderr: "unexpected argument"},
		{name: "help", args: []string{"-h"}, wantCode: ExitOK, wantStdout: "-stop-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			e := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Environ: func() []string { return nil }}
			args := append([]string{"service", "print-unit"}, tt.args...)
			code := run(context.Background(), e, args)
			if code != tt.wantCode {
				t.Errorf("regent %q: code %d, want %d (stderr %q)", args, code, tt.wantCode, stderr.String())
			}
			if tt.name == "default" {
				if diff := cmp.Diff(tt.wantStdout, stdout.String()); diff != "" {
					t.Errorf("regent %q stdout (-want +got):\n%s", args, diff)
				}
			} else if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("regent %q stdout = %q, want it to contain %q", args, stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("regent %q stderr = %q, want it to contain %q", args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestServiceStatusWord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		st       service.Status
		err      error
		wantWord string
		wantCode int
	}{
		{"running", service.StatusRunning, nil, "running", ExitOK},
		{"stopped", service.StatusStopped, nil, "stopped", 3},
		{"not installed", service.StatusUnknown, service.ErrNotInstalled, "not-installed", 3},
		{"failed", service.StatusUnknown, errors.New("service in failed state"), "failed", 3},
		{"systemctl broke", service.StatusUnknown, errors.New("exec: systemctl: not found"), "", ExitFailure},
		{"unknown without error", service.StatusUnknown, nil, "", ExitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			word, code := statusWord(tt.st, tt.err)
			if word != tt.wantWord || code != tt.wantCode {
				t.Errorf("statusWord(%v, %v) = %q, %d; want %q, %d", tt.st, tt.err, word, code, tt.wantWord, tt.wantCode)
			}
		})
	}
}
