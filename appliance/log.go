package appliance

import (
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"
)

// LogOptions configure the root logger.
type LogOptions struct {
	// Name is the root logger's name ("regent"); packages add theirs with
	// Named.
	Name string
	// Level is one of trace, debug, info, warn, error, off; "" means info.
	Level string
	// JSON forces JSON output. Without it the logger writes text on a
	// terminal and JSON anywhere else (journald, files, pipes).
	JSON bool
	// Output receives the log lines.
	Output io.Writer
	// Journal prefixes every entry with its syslog priority ("<3>" for
	// errors), which journald strips and records, so that "journalctl -p err"
	// works. Set it when Output is the journal's stream ([OnJournal]).
	Journal bool
}

// NewLogger builds the root logger of a regent process. It is the only
// logger built from scratch: everything else gets a Named sublogger of it,
// passed down explicitly (never hclog.Default). Subloggers share its level,
// so SetLevel on reload reaches all of them.
func NewLogger(o LogOptions) hclog.Logger {
	level := hclog.LevelFromString(o.Level)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if strings.EqualFold(o.Level, "off") {
		level = hclog.Off
	}
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	json := o.JSON || !isTerminal(out)
	if o.Journal {
		out = &journalWriter{w: out}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       o.Name,
		Level:      level,
		Output:     out,
		JSONFormat: json,
	})
}

// journalWriter prefixes each log entry with its sd-daemon priority. hclog
// hands it one whole entry per LevelWrite.
type journalWriter struct {
	w io.Writer
}

func (j *journalWriter) Write(p []byte) (int, error) {
	return j.LevelWrite(hclog.Info, p)
}

// LevelWrite implements hclog.LevelWriter.
func (j *journalWriter) LevelWrite(level hclog.Level, p []byte) (int, error) {
	if _, err := j.w.Write(append([]byte(journalPriority(level)), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// journalPriority is the "<N>" prefix of a level (sd-daemon(3)).
func journalPriority(level hclog.Level) string {
	switch level {
	case hclog.Error:
		return "<3>"
	case hclog.Warn:
		return "<4>"
	case hclog.Info:
		return "<6>"
	default: // Trace, Debug
		return "<7>"
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
