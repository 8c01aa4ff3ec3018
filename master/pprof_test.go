package master

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestPProfEndpoint checks that /debug/pprof/ is served only when
// EnablePProf is set, on the master's own handler.
func TestPProfEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enable  bool
		path    string
		code    int
		bodyHas string
	}{
		{"off index", false, "/debug/pprof/", http.StatusNotFound, ""},
		{"off cmdline", false, "/debug/pprof/cmdline", http.StatusNotFound, ""},
		{"off heap", false, "/debug/pprof/heap", http.StatusNotFound, ""},
		{"on cmdline", true, "/debug/pprof/cmdline", http.StatusOK, os.Args[0]},
		{"on index", true, "/debug/pprof/", http.StatusOK, "mutex"},
		{"on goroutine", true, "/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile:"},
		{"on unknown profile", true, "/debug/pprof/nothing", http.StatusNotFound, "Unknown profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := New(Config{ID: "pprof", EnablePProf: tt.enable}, newFakeCluster().node())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.code {
				t.Errorf("GET %s with EnablePProf=%v: status %d, want %d (body %q)", tt.path, tt.enable, rec.Code, tt.code, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), tt.bodyHas) {
				t.Errorf("GET %s with EnablePProf=%v: body %q, want it to contain %q", tt.path, tt.enable, rec.Body.String(), tt.bodyHas)
			}
		})
	}
}
