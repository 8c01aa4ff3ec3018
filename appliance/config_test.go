package appliance

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

// updating reports whether the test runs with -update (rewrite the golden
// files). The flag is declared once for the package, in service_test.go;
// looking it up by name keeps this file independent of that variable.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares got with the golden file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// writeFiles creates files (name → content) in a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// configCmp compares Configs by their values, not where they came from.
var configCmp = cmp.Options{
	cmpopts.IgnoreFields(Config{}, "Sources", "Files"),
	cmpopts.IgnoreUnexported(Config{}),
	cmpopts.EquateEmpty(),
}

// TestConfigDiagnostics loads each testdata/config/diag/*.hcl and compares
// the printed diagnostics, with file:line:column and source snippets, with
// the .golden file beside it.
func TestConfigDiagnostics(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/config/diag/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := Loader{Environ: []string{"HOME=/root"}}
			c, diags := l.Load(file)
			if !diags.HasErrors() {
				t.Fatalf("%s: no error diagnostics", file)
			}
			var buf bytes.Buffer
			if err := c.WriteDiagnostics(&buf, diags); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".hcl")+".golden", buf.String())
		})
	}
}

// TestConfigValidateCommand checks that "regent config validate" prints the
// diagnostics and exits 78, and exits 0 on a valid configuration.
func TestConfigValidateCommand(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, nil, "config", "validate", "-config", "testdata/config/diag/all_at_once.hcl")
	if code != ExitConfig {
		t.Errorf("config validate on a bad file: exit %d, want %d", code, ExitConfig)
	}
	if stdout != "" {
		t.Errorf("config validate on a bad file: stdout %q, want none", stdout)
	}
	want, err := os.ReadFile("testdata/config/diag/all_at_once.golden")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), stderr); diff != "" {
		t.Errorf("config validate stderr (-want +got):\n%s", diff)
	}

	code, stdout, stderr = runCLI(t, nil, "config", "validate", "-config", "../examples/single-master.hcl")
	if code != ExitOK || stdout != "configuration valid: 1 file(s) from ../examples/single-master.hcl\n" || stderr != "" {
		t.Errorf("config validate on a good file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, nil, "config", "validate", "-q", "-config", "../examples/single-master.hcl")
	if code != ExitOK || stdout != "" {
		t.Errorf("config validate -q on a good file: exit %d, stdout %q", code, stdout)
	}
	code, _, stderr = runCLI(t, nil, "config", "validate", "-config", "testdata/config/no-such-file.hcl")
	if code != ExitConfig || !strings.Contains(stderr, "Configuration not found") {
		t.Errorf("config validate on a missing file: exit %d, stderr %q", code, stderr)
	}
	// A flag's problem has no file range: the summary names the flag.
	code, _, stderr = runCLI(t, nil, "config", "validate", "-config", "../examples/single-master.hcl", "--quorum=0", "--port=x")
	for _, want := range []string{"Invalid value for flag --port", `"x": want a whole number.`, "Quorum below 1 (flag --quorum)"} {
		if code != ExitConfig || !strings.Contains(stderr, want) {
			t.Errorf("config validate with bad flags: exit %d, stderr:\n%s\nwant exit 78 and %q", code, stderr, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, diags := (&Loader{}).Load("")
	if diags.HasErrors() {
		t.Fatalf("defaults: %s", diags.Error())
	}
	if diff := cmp.Diff(DefaultConfig(), c, configCmp); diff != "" {
		t.Errorf("Load(\"\") (-want +got):\n%s", diff)
	}
	for _, s := range settings {
		if src, ok := c.Sources[s.name]; !ok || src.String() != "default" {
			t.Errorf("source of %s = %v, %v; want default", s.name, src, ok)
		}
	}
	if len(c.Files) != 0 {
		t.Errorf("files read = %q, want none", c.Files)
	}
}

// TestConfigDirectoryMerge checks the merge rule: files in lexical order, a
// later file replaces a value or a notify block of the same name, and
// leftovers of editors and package managers are skipped.
func TestConfigDirectoryMerge(t *testing.T) {
	t.Parallel()
	broken := "this is { not HCL"
	dir := writeFiles(t, map[string]string{
		"10-base.hcl": `
cluster = "base"
log_json = true
master {
  quorum  = 2
  masters = ["a:1", "b:1", "c:1"]
  port    = 6000
}
supervisor {
  notify "pager" {
    exec   = ["/bin/page", "old"]
    events = ["fatal"]
  }
  notify "audit" {
    exec = ["/bin/audit"]
  }
}
`,
		"20-override.hcl": `
cluster  = "override"
log_json = false
master {
  masters = ["a:1", "b:1"]
}
supervisor {
  notify "pager" {
    exec = ["/bin/page", "new"]
  }
}
`,
		"9-late.hcl":           `master { peer_port = 7000 }`, // "9" sorts after "2"
		".#10-base.hcl":        broken,                        // Emacs lock file
		"#20-override.hcl#":    broken,                        // Emacs autosave
		"10-base.hcl~":         broken,                        // editor backup
		"10-base.hcl.bak":      broken,                        // backup
		".10-base.hcl.swp":     broken,                        // vim swap
		"10-base.hcl.swp":      broken,                        // vim swap, other spelling
		".hidden.hcl":          broken,                        // hidden file
		"10-base.hcl.dpkg-old": broken,                        // package manager leftover
		"README":               broken,                        // not a config file
		"regent.json":          broken,                        // only *.hcl is read
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.hcl"), 0o755); err != nil { // directories are skipped, no recursion
		t.Fatal(err)
	}
	c, diags := (&Loader{}).Load(dir)
	if diags.HasErrors() {
		t.Fatalf("Load(%s): %s", dir, diags.Error())
	}
	want := DefaultConfig()
	want.Cluster = "override"
	want.LogJSON = false
	want.Master.Quorum = 2
	want.Master.Masters = []string{"a:1", "b:1"}
	want.Master.Port = 6000
	want.Master.PeerPort = 7000
	want.Supervisor.Notify = []NotifyConfig{
		{Name: "pager", Exec: []string{"/bin/page", "new"}},
		{Name: "audit", Exec: []string{"/bin/audit"}},
	}
	if diff := cmp.Diff(want, c, configCmp); diff != "" {
		t.Errorf("merged config (-want +got):\n%s", diff)
	}
	wantFiles := []string{
		filepath.Join(dir, "10-base.hcl"),
		filepath.Join(dir, "20-override.hcl"),
		filepath.Join(dir, "9-late.hcl"),
	}
	if diff := cmp.Diff(wantFiles, c.Files); diff != "" {
		t.Errorf("files read (-want +got):\n%s", diff)
	}
	wantSources := map[string]string{
		"cluster":                        filepath.Join(dir, "20-override.hcl") + ":2",
		"log_json":                       filepath.Join(dir, "20-override.hcl") + ":3",
		"master.quorum":                  filepath.Join(dir, "10-base.hcl") + ":5",
		"master.masters":                 filepath.Join(dir, "20-override.hcl") + ":5",
		"master.peer_port":               filepath.Join(dir, "9-late.hcl") + ":1",
		"master.ip":                      "default",
		"supervisor.notify.pager":        filepath.Join(dir, "20-override.hcl") + ":8",
		"supervisor.notify.pager.exec":   filepath.Join(dir, "20-override.hcl") + ":9",
		"supervisor.notify.audit.exec":   filepath.Join(dir, "10-base.hcl") + ":15",
		"supervisor.notify.pager.events": "", // replaced block: its events are gone
	}
	for name, want := range wantSources {
		src, ok := c.Sources[name]
		got := src.String()
		if !ok {
			got = ""
		}
		if got != want {
			t.Errorf("source of %s = %q, want %q", name, got, want)
		}
	}
}

func TestConfigEnv(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"regent.hcl": `
cluster   = env.REGENT_CLUSTER
work_dir  = "${env.REGENT_HOME}/data"
log_level = try(env.REGENT_LOG_LEVEL, "warn")
master {
  masters     = split(",", env.REGENT_MASTERS)
  quorum      = 2
  peer_secret = lookup(env, "REGENT_SECRET", "")
}
`})
	l := Loader{Environ: []string{
		"REGENT_CLUSTER=prod",
		"REGENT_HOME=/srv/regent",
		"REGENT_MASTERS=h1:5051,h2:5051,h3:5051",
		"NOT AN IDENTIFIER=ignored",
		"EMPTY=",
	}}
	c, diags := l.Load(dir)
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags.Error())
	}
	want := DefaultConfig()
	want.Cluster = "prod"
	want.WorkDir = "/srv/regent/data"
	want.LogLevel = "warn"
	want.Master.Quorum = 2
	want.Master.Masters = []string{"h1:5051", "h2:5051", "h3:5051"}
	if diff := cmp.Diff(want, c, configCmp); diff != "" {
		t.Errorf("config with env (-want +got):\n%s", diff)
	}
}

// TestConfigFlagsOverrideFiles checks defaults < files < flags, both dash
// spellings, and that a later flag wins.
func TestConfigFlagsOverrideFiles(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"regent.hcl": `
cluster  = "file"
work_dir = "/file"
master {
  quorum  = 1
  port    = 6000
  ip      = "10.0.0.9"
  log_auto_initialize = true
}
`})
	code, stdout, stderr := runCLI(t, nil, "config", "show", "-config", dir,
		"--quorum=2", "-masters", "a:1, h.example:6001,c:1", "--work_dir=/flag", "-port=7000", "--port", "7001",
		"--log_auto_initialize=false", "--registry_store_timeout=5s", "--registry_fetch_timeout", "2m",
		"--cluster=flag", "-log-level=debug", "--advertise_ip=10.1.1.1", "--advertise_port=80",
		"--hostname=h.example", "--peer_port=6001", "--advertise_peer=h.example:6001", "--log_json")
	if code != ExitOK {
		t.Fatalf("config show: exit %d, stderr:\n%s", code, stderr)
	}
	c, diags := (&Loader{}).Load(writeFiles(t, map[string]string{"shown.hcl": stdout}))
	if diags.HasErrors() {
		t.Fatalf("config show output does not load: %s\n%s", diags.Error(), stdout)
	}
	want := DefaultConfig()
	want.Cluster = "flag"
	want.WorkDir = "/flag"
	want.LogLevel = "debug"
	want.LogJSON = true
	want.Master = MasterConfig{
		Quorum:               2,
		Masters:              []string{"a:1", "h.example:6001", "c:1"},
		IP:                   "10.0.0.9",
		Port:                 7001,
		PeerPort:             6001,
		AdvertiseIP:          "10.1.1.1",
		AdvertisePort:        80,
		AdvertisePeer:        "h.example:6001",
		Hostname:             "h.example",
		LogAutoInitialize:    false,
		RegistryStoreTimeout: 5 * time.Second,
		RegistryFetchTimeout: 2 * time.Minute,
	}
	if diff := cmp.Diff(want, c, configCmp); diff != "" {
		t.Errorf("config after flags (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		`quorum                 = 2  `, `# flag --quorum`,
		`ip                     = "10.0.0.9"  `, filepath.Join(dir, "regent.hcl") + ":7",
		`log_level = "debug"  `, `# flag --log_level`,
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("config show output:\n%s\nwant it to contain %q", stdout, line)
		}
	}
}

// TestConfigShow compares "regent config show" on testdata/config/show with
// its golden output.
func TestConfigShow(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, []string{"REGENT_SECRET=s3cr3t"},
		"config", "show", "-config", "testdata/config/show", "--port=6000", "--log-level=debug")
	if code != ExitOK {
		t.Fatalf("config show: exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout, "s3cr3t") {
		t.Errorf("config show printed the peer secret:\n%s", stdout)
	}
	golden(t, "testdata/config/show.golden", stdout)
}

// TestExamples decodes every example without a problem, checks that the
// examples together set every option, and that "config show" of each one
// loads back to the same configuration.
func TestExamples(t *testing.T) {
	t.Parallel()
	paths := []string{"../examples/single-master.hcl", "../examples/three-masters"}
	entries, err := os.ReadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(paths) {
		t.Errorf("examples/ holds %d entries, the test knows %q: add the new one", len(entries), paths)
	}
	set := map[string]bool{}
	for _, path := range paths {
		c, diags := (&Loader{}).Load(path)
		if len(diags) > 0 {
			var buf bytes.Buffer
			_ = c.WriteDiagnostics(&buf, diags)
			t.Errorf("example %s:\n%s", path, buf.String())
			continue
		}
		for name, src := range c.Sources {
			if src.File != "" {
				set[name] = true
			}
		}
		for _, n := range c.Supervisor.Notify {
			set["supervisor.notify"] = true
			if len(n.Events) > 0 {
				set["supervisor.notify.events"] = true
			}
		}
		var shown bytes.Buffer
		if err := c.Show(&shown); err != nil {
			t.Fatal(err)
		}
		again, diags := (&Loader{}).Load(writeFiles(t, map[string]string{"shown.hcl": shown.String()}))
		if diags.HasErrors() {
			t.Errorf("config show of %s does not load: %s", path, diags.Error())
			continue
		}
		if diff := cmp.Diff(c, again, configCmp); diff != "" {
			t.Errorf("config show of %s loads differently (-example +shown):\n%s", path, diff)
		}
	}
	want := []string{"supervisor.notify", "supervisor.notify.events"}
	for _, s := range settings {
		want = append(want, s.name)
	}
	for _, name := range want {
		if !set[name] {
			t.Errorf("no example sets %s", name)
		}
	}
}

func TestChangedSettings(t *testing.T) {
	t.Parallel()
	a, b := DefaultConfig(), DefaultConfig()
	if got := ChangedSettings(a, b); len(got) != 0 {
		t.Errorf("ChangedSettings(defaults, defaults) = %q, want none", got)
	}
	b.LogLevel = "debug"
	b.Master.PeerSecret = "new"
	b.Master.Masters = []string{"a:1"}
	b.Supervisor.Notify = []NotifyConfig{{Name: "x", Exec: []string{"/bin/true"}}}
	want := []string{"log_level", "master.masters", "master.peer_secret", "supervisor.notify"}
	if diff := cmp.Diff(want, ChangedSettings(a, b)); diff != "" {
		t.Errorf("ChangedSettings (-want +got):\n%s", diff)
	}
}

func TestIsConfigFileName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"regent.hcl", true},
		{"10-a.hcl", true},
		{".#regent.hcl", false},
		{"#regent.hcl#", false},
		{"regent.hcl~", false},
		{"regent.hcl.bak", false},
		{".regent.hcl.swp", false},
		{"regent.hcl.swp", false},
		{"regent.hcl.dpkg-dist", false},
		{"regent.hcl.rpmnew", false},
		{".hidden.hcl", false},
		{"regent.json", false},
		{"regent.HCL", false},
	}
	for _, tt := range tests {
		if got := isConfigFileName(tt.name); got != tt.want {
			t.Errorf("isConfigFileName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSourceString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  Source
		want string
	}{
		{Source{}, "default"},
		{Source{Flag: "quorum"}, "flag --quorum"},
		{Source{File: "/etc/regent.d/a.hcl", Range: hcl.Range{Filename: "/etc/regent.d/a.hcl", Start: hcl.Pos{Line: 7, Column: 3}}}, "/etc/regent.d/a.hcl:7"},
	}
	for _, tt := range tests {
		if got := tt.src.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestConfigFlagNames(t *testing.T) {
	t.Parallel()
	// The Mesos-style flags the issue asks for, all present.
	want := []string{"quorum", "work_dir", "ip", "port", "advertise_ip", "advertise_port", "hostname", "masters",
		"log_auto_initialize", "registry_store_timeout", "registry_fetch_timeout", "cluster", "log_level"}
	got := ConfigFlagNames()
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("ConfigFlagNames() = %q, missing %q", got, name)
		}
	}
}

// TestLoadConfigReadsTheProcessEnvironment covers LoadConfig, the entry point
// the supervisor calls on SIGHUP. Not parallel: it sets the environment.
func TestLoadConfigReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("REGENT_TEST_CLUSTER", "from-env")
	dir := writeFiles(t, map[string]string{"regent.hcl": `cluster = env.REGENT_TEST_CLUSTER`})
	c, diags := LoadConfig(dir, FlagValue{Name: "log-level", Value: "error"})
	if diags.HasErrors() {
		t.Fatalf("LoadConfig: %s", diags.Error())
	}
	if c.Cluster != "from-env" || c.LogLevel != "error" || c.Sources["log_level"].String() != "flag --log_level" {
		t.Errorf("LoadConfig: cluster %q, log_level %q from %v; want from-env, error from the flag", c.Cluster, c.LogLevel, c.Sources["log_level"])
	}
}

// TestDocsListEveryOption keeps docs/configuration.md in step with the
// settings table: every option and every flag is documented.
func TestDocsListEveryOption(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	want := []string{"`notify`", "`exec`", "`events`", "`-config PATH`", "`-log-level`"}
	for _, s := range settings {
		want = append(want, "`"+s.name[strings.LastIndex(s.name, ".")+1:]+"`")
		if s.flag != "" {
			want = append(want, "`--"+s.flag)
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("docs/configuration.md does not mention %s", w)
		}
	}
}
