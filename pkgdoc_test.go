package regent

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackageDoc checks style.md C2/C3: every package has exactly one package
// doc comment, it is in doc.go, it starts "Package <name>" ("Command <name>"
// for a main package), and doc.go holds nothing else.
func TestPackageDoc(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	var paths []string
	for path, p := range pkgs {
		if inModule(path) && len(p.GoFiles)+len(p.CgoFiles) > 0 {
			paths = append(paths, path)
		}
	}
	slices.Sort(paths)
	if len(paths) == 0 {
		t.Fatal("go list found no package in the module")
	}
	for _, path := range paths {
		t.Run(strings.TrimPrefix(strings.TrimPrefix(path, modulePath), "/"), func(t *testing.T) {
			t.Parallel()
			for _, problem := range checkPackageDoc(pkgs[path].Dir) {
				t.Error(problem)
			}
		})
	}
}

// checkPackageDoc returns what is wrong with the package doc comments of the
// Go package in dir. It looks at every non-test .go file, whatever its build
// constraints, so that a platform file cannot hide a second comment.
func checkPackageDoc(dir string) []string {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return []string{err.Error()}
	}
	fset := token.NewFileSet()
	var problems, withDoc []string
	hasDocGo := false
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasSuffix(base, "_test.go") {
			continue
		}
		mode := parser.ParseComments | parser.PackageClauseOnly
		if base == "doc.go" {
			hasDocGo = true
			mode = parser.ParseComments
		}
		f, err := parser.ParseFile(fset, name, nil, mode)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if f.Doc != nil {
			withDoc = append(withDoc, base)
			problems = append(problems, checkDocText(base, f)...)
		}
		if base == "doc.go" && len(f.Decls) > 0 {
			problems = append(problems, "doc.go must hold only the package comment and clause, found declarations")
		}
	}
	switch {
	case !hasDocGo:
		problems = append(problems, "no doc.go: the package comment belongs in doc.go")
	case len(withDoc) == 0:
		problems = append(problems, "no package doc comment (write it in doc.go)")
	case len(withDoc) > 1 || withDoc[0] != "doc.go":
		problems = append(problems, "package doc comment in "+strings.Join(withDoc, ", ")+"; keep exactly one, in doc.go")
	}
	return problems
}

func checkDocText(base string, f *ast.File) []string {
	text := f.Doc.Text()
	want := "Package " + f.Name.Name + " "
	if f.Name.Name == "main" {
		want = "Command "
	}
	if !strings.HasPrefix(text, want) {
		return []string{base + ": package comment must start with " + strings.TrimSpace(want) + "…"}
	}
	return nil
}

func TestCheckPackageDoc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  int // number of problems
	}{
		{"good", map[string]string{
			"doc.go": "// Package x does things.\npackage x\n",
			"x.go":   "package x\n\nfunc F() {}\n",
		}, 0},
		{"good command", map[string]string{
			"doc.go":  "// Command x runs things.\npackage main\n",
			"main.go": "package main\n\nfunc main() {}\n",
		}, 0},
		{"no doc.go", map[string]string{
			"x.go": "// Package x does things.\npackage x\n",
		}, 1},
		{"empty doc.go", map[string]string{
			"doc.go": "package x\n",
		}, 1},
		{"two comments", map[string]string{
			"doc.go":     "// Package x does things.\npackage x\n",
			"x_linux.go": "// Package x again.\npackage x\n",
		}, 1},
		{"declarations in doc.go", map[string]string{
			"doc.go": "// Package x does things.\npackage x\n\nconst C = 1\n",
		}, 1},
		{"wrong start", map[string]string{
			"doc.go": "// This package does things.\npackage x\n",
		}, 1},
		{"test files ignored", map[string]string{
			"doc.go":    "// Package x does things.\npackage x\n",
			"x_test.go": "// Package x tests.\npackage x\n",
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := checkPackageDoc(dir)
			if len(got) != tt.want {
				t.Errorf("files %v: got %d problems %q, want %d", tt.files, len(got), got, tt.want)
			}
		})
	}
}
