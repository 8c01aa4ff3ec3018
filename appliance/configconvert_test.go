package appliance

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/supervisor"
)

func loadExample(t *testing.T, path string) *Config {
	t.Helper()
	c, diags := (&Loader{}).Load(path)
	if diags.HasErrors() {
		t.Fatalf("load %s: %s", path, diags.Error())
	}
	return c
}

func TestSupervisorConfig(t *testing.T) {
	t.Parallel()
	c := loadExample(t, "../examples/three-masters")
	c.Supervisor.MaxRestarts = 3
	c.Supervisor.BackoffMax = 7 * time.Second
	got, err := c.SupervisorConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := supervisor.DefaultConfig()
	want.Policy.MaxRestarts = 3
	want.Policy.BackoffMax = 7 * time.Second
	want.Hooks = []supervisor.Hook{
		{Name: "pager", Exec: []string{"/usr/local/bin/page", "regent"}, Events: []supervisor.Event{supervisor.EventFatal, supervisor.EventGaveUp}},
		{Name: "audit", Exec: []string{"/usr/bin/logger", "-t", "regent-audit"}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(supervisor.Config{}, "Reload", "Signals", "Launcher", "Rand", "Logger")); diff != "" {
		t.Errorf("SupervisorConfig (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("SupervisorConfig of the example does not validate: %v", err)
	}
	d, err := DefaultConfig().SupervisorConfig()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(supervisor.DefaultConfig(), d, cmpopts.IgnoreFields(supervisor.Config{}, "Reload", "Signals", "Launcher", "Rand", "Logger")); diff != "" {
		t.Errorf("the defaults of appliance and supervisor differ (-supervisor +appliance):\n%s", diff)
	}
}

func TestMasterConfig(t *testing.T) {
	t.Parallel()
	c := loadExample(t, "../examples/three-masters")
	c.Master.PeerSecret = "s3cr3t"
	got := c.MasterConfig()
	if got.Cluster != "prod" || got.Quorum != 2 || got.AdvertiseIP != "10.0.0.1" || got.Port != 5050 ||
		got.Hostname != "master-1.example.net" || got.RegistryStoreTimeout != 20*time.Second || got.Version != Version {
		t.Errorf("MasterConfig = %+v", got)
	}
	for flag, want := range map[string]string{
		"quorum":                  "2",
		"masters":                 "10.0.0.1:5051,10.0.0.2:5051,10.0.0.3:5051",
		"log_auto_initialize":     "true",
		"registry_fetch_timeout":  "1m",
		"master.peer_secret":      redacted,
		"supervisor.max_restarts": "10",
	} {
		if got.Flags[flag] != want {
			t.Errorf("MasterConfig().Flags[%q] = %q, want %q", flag, got.Flags[flag], want)
		}
	}
	got.ID = "test"
	if err := got.Validate(); err != nil {
		t.Errorf("MasterConfig of the example does not validate: %v", err)
	}
}

func TestReplogConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		want   replog.Config
	}{
		{"single master on every interface", func(*Config) {},
			replog.Config{Addr: "127.0.0.1:5051", Masters: []string{"127.0.0.1:5051"}, Quorum: 1, AutoInitialize: true}},
		{"single master with an advertised ip", func(c *Config) { c.Master.AdvertiseIP = "10.0.0.7"; c.Master.PeerPort = 6001 },
			replog.Config{Addr: "10.0.0.7:6001", Masters: []string{"10.0.0.7:6001"}, Quorum: 1, AutoInitialize: true}},
		{"three masters, bound ip", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.IP = "10.0.0.2"
			c.Master.Masters = []string{"10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"}
			c.Master.LogAutoInitialize = false
		}, replog.Config{Addr: "10.0.0.2:5051", Masters: []string{"10.0.0.1:5051", "10.0.0.2:5051", "10.0.0.3:5051"}, Quorum: 2}},
		{"advertise_peer wins", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.AdvertiseIP = "10.0.0.9"
			c.Master.AdvertisePeer = "m3.example:5051"
			c.Master.Masters = []string{"m1.example:5051", "m2.example:5051", "m3.example:5051"}
		}, replog.Config{Addr: "m3.example:5051", Masters: []string{"m1.example:5051", "m2.example:5051", "m3.example:5051"}, Quorum: 2, AutoInitialize: true}},
		{"advertise_ip names an API front, not a master", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.IP = "127.0.0.1"
			c.Master.AdvertiseIP = "127.0.0.2"
			c.Master.Masters = []string{"127.0.0.1:5051", "127.0.0.3:5051"}
		}, replog.Config{Addr: "127.0.0.1:5051", Masters: []string{"127.0.0.1:5051", "127.0.0.3:5051"}, Quorum: 2, AutoInitialize: true}},
		{"advertise_ip in masters", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.AdvertiseIP = "10.0.0.3"
			c.Master.Masters = []string{"10.0.0.1:5051", "10.0.0.3:5051"}
		}, replog.Config{Addr: "10.0.0.3:5051", Masters: []string{"10.0.0.1:5051", "10.0.0.3:5051"}, Quorum: 2, AutoInitialize: true}},
		{"advertise_ip outside masters on every interface", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.AdvertiseIP = "192.0.2.1"
			c.Master.Masters = []string{"10.0.0.1:5051", "10.0.0.3:5051"}
		}, replog.Config{Addr: "", Masters: []string{"10.0.0.1:5051", "10.0.0.3:5051"}, Quorum: 2, AutoInitialize: true}},
		{"unknown address on every interface", func(c *Config) {
			c.Master.Quorum = 2
			c.Master.Masters = []string{"10.0.0.1:5051", "10.0.0.2:5051"}
		}, replog.Config{Addr: "", Masters: []string{"10.0.0.1:5051", "10.0.0.2:5051"}, Quorum: 2, AutoInitialize: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tt.change(c)
			if diff := cmp.Diff(tt.want, c.ReplogConfig(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ReplogConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReloadActionFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		want   supervisor.ReloadAction
	}{
		{"nothing", func(*Config) {}, supervisor.ReloadForward},
		{"log level", func(c *Config) { c.LogLevel = "debug" }, supervisor.ReloadForward},
		{"supervisor policy", func(c *Config) { c.Supervisor.MaxRestarts = 1 }, supervisor.ReloadForward},
		{"notify hooks", func(c *Config) { c.Supervisor.Notify = []NotifyConfig{{Name: "x", Exec: []string{"/bin/true"}}} }, supervisor.ReloadForward},
		{"quorum", func(c *Config) { c.Master.Quorum = 2 }, supervisor.ReloadRestart},
		{"tls", func(c *Config) { c.Master.TLS.CAFile = "/ca.pem" }, supervisor.ReloadRestart},
		{"work_dir", func(c *Config) { c.WorkDir = "/srv" }, supervisor.ReloadRestart},
		{"log_json", func(c *Config) { c.LogJSON = true }, supervisor.ReloadRestart},
		{"log level and port", func(c *Config) { c.LogLevel = "debug"; c.Master.Port = 1 }, supervisor.ReloadRestart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			old, new := DefaultConfig(), DefaultConfig()
			tt.change(new)
			if got := ReloadActionFor(old, new); got != tt.want {
				t.Errorf("ReloadActionFor after %s = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestMasterConfigEnablePProf checks that enable_pprof reaches the master,
// from the file and from the Mesos-style flag, and is off by default.
func TestMasterConfigEnablePProf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		flags []FlagValue
		want  bool
	}{
		{"default", "master {}\n", nil, false},
		{"file", "master {\n  enable_pprof = true\n}\n", nil, true},
		{"flag", "master {}\n", []FlagValue{{Name: "enable_pprof", Value: "true"}}, true},
		{"flag over file", "master {\n  enable_pprof = true\n}\n", []FlagValue{{Name: "enable_pprof", Value: "false"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"m.hcl": tt.file})
			c, diags := (&Loader{Flags: tt.flags}).Load(dir)
			if diags.HasErrors() {
				t.Fatalf("load %q with flags %v: %s", tt.file, tt.flags, diags.Error())
			}
			if got := c.MasterConfig().EnablePProf; got != tt.want {
				t.Errorf("file %q, flags %v: MasterConfig().EnablePProf = %v, want %v", tt.file, tt.flags, got, tt.want)
			}
			if got, want := c.Flags()["enable_pprof"], strconv.FormatBool(tt.want); got != want {
				t.Errorf("file %q, flags %v: Flags()[enable_pprof] = %q, want %q", tt.file, tt.flags, got, want)
			}
		})
	}
}
