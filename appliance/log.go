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
	return hclog.New(&hclog.LoggerOptions{
		Name:       o.Name,
		Level:      level,
		Output:     out,
		JSONFormat: o.JSON || !isTerminal(out),
	})
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
