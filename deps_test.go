package regent

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// modulePath is the module's import path; rule package names are relative to it.
const modulePath = "github.com/regent-ha/regent"

// A ban forbids a package from importing another, with the reason printed
// when the edge is crossed. pattern is an import path, relative to the module
// for the module's own packages; "x/..." matches x and everything below it.
type ban struct {
	pattern string
	reason  string
}

// The "must not import" table of style.md C1. Third-party and in-module bans
// are checked against every dependency of a package, however indirect.
// Standard-library bans are checked against the imports of the package and of
// its in-module dependencies: a library such as badger may use net itself.
var denyTable = []struct {
	pkg  string
	bans []ban
}{
	{"supervisor", []ban{
		{"master/...", "the supervisor only starts and restarts the master process; it never links the master"},
		{"replog/...", "the supervisor never touches the log; only the master child opens it"},
		{"github.com/hashicorp/hcl/...", "the supervisor takes a plain supervisor.Config; appliance decodes HCL"},
		{"github.com/dgraph-io/badger/...", "only the master child may hold the Badger lock"},
		{"github.com/kardianos/service/...", "service installation is appliance's business"},
		{"net/http", "the supervisor serves nothing; status goes to systemd and hooks"},
	}},
	{"master", []ban{
		{"supervisor/...", "the master runs on its own too; it must not depend on its supervisor"},
		{"replog/badgerstore/...", "the master sees the log only through its own Log interface; appliance wires the store"},
		{"replog/peer/...", "the master sees the log only through its own Log interface; appliance wires the transport"},
		{"github.com/hashicorp/hcl/...", "the master takes a plain master.Config; appliance decodes HCL"},
		{"github.com/dgraph-io/badger/...", "storage is replog/badgerstore's; the master sees only its Log interface"},
		{"github.com/kardianos/service/...", "service installation is appliance's business"},
		{"os/exec", "the master starts no processes; it is the fail-fast child"},
	}},
	{"replog/peer", []ban{
		{"master/...", "the transport carries replog messages and knows nothing of the master"},
		{"supervisor/...", "the transport knows nothing of process supervision"},
		{"github.com/dgraph-io/badger/...", "storage is replog/badgerstore's"},
		{"github.com/hashicorp/hcl/...", "the transport takes plain settings; appliance decodes HCL"},
	}},
	{"replog", []ban{
		{"net/...", "replog reaches the network only through its Transport (replog/peer opens sockets)"},
		{"master/...", "the log is below the master, not beside it"},
		{"supervisor/...", "the log knows nothing of process supervision"},
		{"github.com/hashicorp/hcl/...", "replog takes a plain replog.Config; appliance decodes HCL"},
		{"github.com/dgraph-io/badger/...", "replog reaches disk only through its Storage (replog/badgerstore)"},
		{"github.com/kardianos/service/...", "service installation is appliance's business"},
	}},
	{"replog/badgerstore", []ban{
		{"master/...", "the store is below the master"},
		{"supervisor/...", "the store knows nothing of process supervision"},
		{"net/...", "the store does disk IO only"},
	}},
}

// paxosBannedStd are the standard-library packages the deterministic core
// must not import (style.md C1, C6): time enters as Tick, randomness as an
// injected *rand.Rand, and the core neither logs, locks nor does IO.
var paxosBannedStd = []ban{
	{"time", "time enters the core only as Tick calls"},
	{"os/...", "the core does no IO; the driver persists its Ready batches"},
	{"log/...", "the core never logs; the driver logs what it sees in Ready"},
	{"sync/...", "the core is single-threaded; the driver serialises calls"},
	{"net/...", "the core does no IO; the transport carries its messages"},
}

// listedPackage is what "go list -json" says of one package.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
}

var (
	listOnce sync.Once
	listed   map[string]*listedPackage
	listErr  error
)

// goList lists the module's packages and all their dependencies, once per
// test binary, with and without the invariants build tag (CI tests with it),
// and merges the two: a package's imports are those of either build.
// Packages that do not build (someone is mid-edit) are listed all the same
// with what could be read.
func goList(t *testing.T) map[string]*listedPackage {
	t.Helper()
	listOnce.Do(func() {
		listed = map[string]*listedPackage{}
		for _, tags := range []string{"", "invariants"} {
			if err := goListInto(listed, tags); err != nil {
				listErr = err
				return
			}
		}
	})
	if listErr != nil {
		t.Fatal(listErr)
	}
	return listed
}

func goListInto(pkgs map[string]*listedPackage, tags string) error {
	cmd := exec.Command("go", "list", "-e", "-deps", "-tags="+tags,
		"-json=ImportPath,Dir,Standard,Imports,GoFiles,CgoFiles", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return errors.New("go list -tags=" + tags + ": " + err.Error() + ": " + stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return errors.New("decode go list output: " + err.Error())
		}
		if old, ok := pkgs[p.ImportPath]; ok {
			p.Imports = union(old.Imports, p.Imports)
			p.GoFiles = union(old.GoFiles, p.GoFiles)
			p.CgoFiles = union(old.CgoFiles, p.CgoFiles)
		}
		pkgs[p.ImportPath] = p
	}
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

func inModule(path string) bool {
	return path == modulePath || strings.HasPrefix(path, modulePath+"/")
}

// matches reports whether import path imp matches pattern (module-relative
// for the module's own packages, "x/..." for a tree).
func (b ban) matches(imp string) bool {
	pat := b.pattern
	for _, full := range []string{pat, modulePath + "/" + pat} {
		if tree, ok := strings.CutSuffix(full, "/..."); ok {
			if imp == tree || strings.HasPrefix(imp, tree+"/") {
				return true
			}
		} else if imp == full {
			return true
		}
	}
	return false
}

// chain returns the import chain from pkg to dep ("a → b → c"), following
// only edges for which follow is true, or nil when dep is not reachable.
func chain(pkgs map[string]*listedPackage, pkg, dep string, follow func(from string) bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == dep {
			var path []string
			for p := cur; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		p := pkgs[cur]
		if p == nil || (cur != pkg && !follow(cur)) {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

// violations returns one line per banned dependency of pkg.
func violations(pkgs map[string]*listedPackage, pkg string, bans []ban) []string {
	var out []string
	for _, b := range bans {
		for imp := range pkgs {
			if imp == pkg || !b.matches(imp) {
				continue
			}
			follow := func(string) bool { return true }
			if p := pkgs[imp]; p != nil && p.Standard {
				// A standard package counts only when the module's own code imports it.
				follow = inModule
			}
			if c := chain(pkgs, pkg, imp, follow); c != nil {
				out = append(out, strings.Join(c, " → ")+": "+b.reason)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestDeps(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	for _, rule := range denyTable {
		t.Run(rule.pkg, func(t *testing.T) {
			pkg := modulePath + "/" + rule.pkg
			if p, ok := pkgs[pkg]; !ok || len(p.GoFiles)+len(p.CgoFiles) == 0 {
				t.Skipf("package %s does not exist yet", rule.pkg)
			}
			for _, v := range violations(pkgs, pkg, rule.bans) {
				t.Errorf("forbidden import: %s", v)
			}
		})
	}
}

func TestDepsPaxosCore(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	pkg := modulePath + "/replog/paxos"
	p, ok := pkgs[pkg]
	if !ok || len(p.GoFiles) == 0 {
		t.Skip("package replog/paxos does not exist yet")
	}
	for _, imp := range p.Imports {
		dep := pkgs[imp]
		switch {
		case imp == modulePath+"/replog/paxospb":
		case dep == nil || !dep.Standard:
			t.Errorf("forbidden import: %s → %s: the core imports only the standard library and replog/paxospb", pkg, imp)
		}
	}
	for _, v := range violations(pkgs, pkg, paxosBannedStd) {
		t.Errorf("forbidden import: %s", v)
	}
}

// TestDepsReplogtestOnlyInTests checks that no package links the test fakes:
// replog/replogtest may be imported from _test.go files only.
func TestDepsReplogtestOnlyInTests(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	fake := ban{"replog/replogtest/...", "replogtest holds test fakes; import it from _test.go files only"}
	var paths []string
	for path := range pkgs {
		if inModule(path) && !fake.matches(path) {
			paths = append(paths, path)
		}
	}
	slices.Sort(paths)
	for _, path := range paths {
		for _, v := range violations(pkgs, path, []ban{fake}) {
			t.Errorf("forbidden import: %s", v)
		}
	}
}

func TestBanMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, imp string
		want         bool
	}{
		{"replog/...", modulePath + "/replog", true},
		{"replog/...", modulePath + "/replog/paxos", true},
		{"replog/...", modulePath + "/replogx", false},
		{"replog", modulePath + "/replog/paxos", false},
		{"net/...", "net", true},
		{"net/...", "net/http", true},
		{"net/...", "netip", false},
		{"net/http", "net/http/httptest", false},
		{"github.com/hashicorp/hcl/...", "github.com/hashicorp/hcl/v2/gohcl", true},
		{"os/exec", "os", false},
	}
	for _, tt := range tests {
		if got := (ban{pattern: tt.pattern}).matches(tt.imp); got != tt.want {
			t.Errorf("ban %q matches %q = %v, want %v", tt.pattern, tt.imp, got, tt.want)
		}
	}
}

func TestViolationsReportChain(t *testing.T) {
	t.Parallel()
	m := func(s string) string { return modulePath + "/" + s }
	pkgs := map[string]*listedPackage{
		m("supervisor"):    {ImportPath: m("supervisor"), Imports: []string{m("helper"), "fmt"}},
		m("helper"):        {ImportPath: m("helper"), Imports: []string{"net/http", "github.com/x/lib"}},
		"github.com/x/lib": {ImportPath: "github.com/x/lib", Imports: []string{"net"}},
		"net/http":         {ImportPath: "net/http", Standard: true, Imports: []string{"net"}},
		"net":              {ImportPath: "net", Standard: true},
		"fmt":              {ImportPath: "fmt", Standard: true},
	}
	got := violations(pkgs, m("supervisor"), []ban{
		{"net/http", "no http"},
		{"net/...", "no net"},
		{"github.com/x/...", "no x"},
	})
	want := []string{
		m("supervisor") + " → " + m("helper") + " → github.com/x/lib: no x",
		m("supervisor") + " → " + m("helper") + " → net/http: no http",
		m("supervisor") + " → " + m("helper") + " → net/http: no net",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\ngot  %q\nwant %q", got, want)
	}
}

// TestOnlyMainExits checks style.md C4: only cmd/regent's main calls
// os.Exit (or log.Fatal, which calls it), once; every other function returns
// an error or an exit code.
func TestOnlyMainExits(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	var found []string
	for path, p := range pkgs {
		if !inModule(path) {
			continue
		}
		for _, name := range append(slices.Clone(p.GoFiles), p.CgoFiles...) {
			file := filepath.Join(p.Dir, name)
			calls, err := exitCalls(file)
			if err != nil {
				t.Errorf("%s: %v", file, err)
			}
			found = append(found, calls...)
		}
	}
	slices.Sort(found)
	want := []string{filepath.Join("cmd", "regent", "main.go") + ": os.Exit"}
	var rel []string
	for _, f := range found {
		rel = append(rel, strings.TrimPrefix(f, mustGetwd(t)+string(filepath.Separator)))
	}
	if !slices.Equal(rel, want) {
		t.Errorf("process exits outside main: got %q, want exactly %q", rel, want)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// exitCalls returns "FILE: os.Exit" for each call in file that ends the
// process.
func exitCalls(file string) ([]string, error) {
	return forbiddenCalls(file, map[string]bool{
		"os.Exit": true, "log.Fatal": true, "log.Fatalf": true, "log.Fatalln": true,
	})
}

// globalLoggerCalls returns "FILE: hclog.Default" for each use of hclog's
// package-level logger in file.
func globalLoggerCalls(file string) ([]string, error) {
	return forbiddenCalls(file, map[string]bool{
		"github.com/hashicorp/go-hclog.Default": true, "github.com/hashicorp/go-hclog.L": true,
		"github.com/hashicorp/go-hclog.SetDefault": true,
	})
}

// forbiddenCalls returns "FILE: pkg.Func" for each call in file of a function
// in banned, named by import path and function ("os.Exit"); the report
// shortens the path to its last element.
func forbiddenCalls(file string, banned map[string]bool) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	names := map[string]string{} // local name → import path
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		local := path[strings.LastIndex(path, "/")+1:]
		if local == "go-hclog" {
			local = "hclog" // the package's declared name
		}
		if imp.Name != nil {
			local = imp.Name.Name
		}
		names[local] = path
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		path, ok := names[x.Name]
		if ok && banned[path+"."+sel.Sel.Name] {
			short := path[strings.LastIndex(path, "/")+1:]
			if short == "go-hclog" {
				short = "hclog"
			}
			out = append(out, file+": "+short+"."+sel.Sel.Name)
		}
		return true
	})
	return out, nil
}

// TestNoGlobalLogger checks style.md C5: loggers are passed down from the
// root logger appliance builds; nobody uses hclog's package-level one.
func TestNoGlobalLogger(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	for path, p := range pkgs {
		if !inModule(path) {
			continue
		}
		for _, name := range append(slices.Clone(p.GoFiles), p.CgoFiles...) {
			calls, err := globalLoggerCalls(filepath.Join(p.Dir, name))
			if err != nil {
				t.Error(err)
			}
			for _, c := range calls {
				t.Errorf("%s: pass a logger down instead (style.md C5)", c)
			}
		}
	}
}

func TestExitCalls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "x.go")
	src := `package x

import (
	stdlog "log"
	"os"
)

func f() {
	defer os.Exit(1)
	stdlog.Fatalf("x")
	os.Getenv("HOME")
}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := exitCalls(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{file + ": os.Exit", file + ": log.Fatalf"}
	if !slices.Equal(got, want) {
		t.Errorf("exitCalls:\n%s\ngot  %q\nwant %q", src, got, want)
	}

	logSrc := `package x

import "github.com/hashicorp/go-hclog"

func g() hclog.Logger {
	hclog.New(nil)
	return hclog.Default()
}
`
	if err := os.WriteFile(file, []byte(logSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = globalLoggerCalls(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{file + ": hclog.Default"}; !slices.Equal(got, want) {
		t.Errorf("globalLoggerCalls:\n%s\ngot  %q\nwant %q", logSrc, got, want)
	}
}
