package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      LogOptions
		wantLevel hclog.Level
	}{
		{"default level", LogOptions{}, hclog.Info},
		{"debug", LogOptions{Level: "debug"}, hclog.Debug},
		{"upper case", LogOptions{Level: "WARN"}, hclog.Warn},
		{"off", LogOptions{Level: "off"}, hclog.Off},
		{"unknown falls back to info", LogOptions{Level: "loud"}, hclog.Info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.opts.Output = &buf
			tt.opts.Name = "regent"
			l := NewLogger(tt.opts)
			if got := l.GetLevel(); got != tt.wantLevel {
				t.Errorf("NewLogger(%+v).GetLevel() = %v, want %v", tt.opts, got, tt.wantLevel)
			}
			l.Named("replog").Error("store failed", "position", 7)
			if tt.wantLevel == hclog.Off {
				if buf.Len() != 0 {
					t.Errorf("logger at off wrote %q", buf.String())
				}
				return
			}
			// Not a terminal: one JSON object per line.
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
			}
			want := map[string]any{"@level": "error", "@module": "regent.replog", "@message": "store failed", "position": float64(7)}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("log record %v: %s = %v, want %v", rec, k, rec[k], v)
				}
			}
		})
	}
}

func TestLoggerSharesLevelWithSubloggers(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	root := NewLogger(LogOptions{Name: "regent", Level: "warn", Output: &buf})
	sub := root.Named("supervisor")
	sub.Info("hidden")
	root.SetLevel(hclog.Info) // what a reload of log_level does
	sub.Info("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("after SetLevel on the root, the sublogger wrote %q", out)
	}
}

func TestLogDiagnostics(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogger(LogOptions{Name: "regent", Output: &buf})
	LogDiagnostics(l, hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Port out of range", Detail: "70000 is not a port.",
			Subject: &hcl.Range{Filename: "/etc/regent.d/a.hcl", Start: hcl.Pos{Line: 3, Column: 14}}},
		{Severity: hcl.DiagWarning, Summary: "Something odd", Detail: "No place."},
	})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("LogDiagnostics wrote %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"@level": "error", "@message": "config: Port out of range", "file": "/etc/regent.d/a.hcl",
		"line": float64(3), "column": float64(14), "detail": "70000 is not a port."}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("record %v: %s = %v, want %v", rec, k, rec[k], v)
		}
	}
	if !strings.Contains(lines[1], `"@level":"warn"`) {
		t.Errorf("warning logged as %s", lines[1])
	}
}

func TestJournalPriorities(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogger(LogOptions{Name: "regent", Level: "trace", Output: &buf, Journal: true})
	l.Error("e")
	l.Warn("w")
	l.Info("i")
	l.Debug("d")
	l.Trace("t")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		prefix, rest, ok := strings.Cut(line, "{")
		if !ok || !json.Valid([]byte("{"+rest)) {
			t.Fatalf("line %q is not a priority and a JSON record", line)
		}
		got = append(got, prefix)
	}
	want := []string{"<3>", "<4>", "<6>", "<7>", "<7>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("priorities (-want +got):\n%s", diff)
	}
}

func TestOnJournal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no device and inode on this platform")
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "JOURNAL_STREAM" {
				return v
			}
			return ""
		}
	}
	match := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	tests := []struct {
		name   string
		getenv func(string) string
		w      io.Writer
		want   bool
	}{
		{"same stream", env(match), f, true},
		{"other stream", env(fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)), f, false},
		{"unset", env(""), f, false},
		{"garbage", env("x:y"), f, false},
		{"not a file", env(match), &bytes.Buffer{}, false},
	}
	for _, tt := range tests {
		if got := OnJournal(tt.getenv, tt.w); got != tt.want {
			t.Errorf("%s: OnJournal = %v, want %v", tt.name, got, tt.want)
		}
	}
}
