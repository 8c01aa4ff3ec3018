package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// TailLines is how many of the child's last output lines are kept for crash
// reports (hooks' stdin and the state file).
const TailLines = 200

// maxLineBytes bounds one relayed line; longer lines are relayed in pieces.
const maxLineBytes = 64 << 10

// maxTailLineBytes bounds one line kept in the tail.
const maxTailLineBytes = 4 << 10

// ring keeps the last n lines written to it. Safe for concurrent use.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newRing(n int) *ring { return &ring{lines: make([]string, n)} }

func (r *ring) add(line string) {
	if len(line) > maxTailLineBytes {
		line = line[:maxTailLineBytes]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = line
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// snapshot returns the kept lines, oldest first.
func (r *ring) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return slices.Clone(r.lines[:r.next])
	}
	return append(slices.Clone(r.lines[r.next:]), r.lines[:r.next]...)
}

// relay re-emits the child's output through a logger, go-plugin style: an
// hclog JSON line is logged at its own level with its own fields, any other
// line at Info, and once a Go panic or fatal error starts every following
// line at Error.
type relay struct {
	log     hclog.Logger
	modules map[string]hclog.Logger
	tail    *ring
	panic   bool
}

func newRelay(log hclog.Logger, tail *ring) *relay {
	return &relay{log: log, modules: make(map[string]hclog.Logger), tail: tail}
}

// run relays r until EOF or a read error.
func (rl *relay) run(r io.Reader) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			rl.line(string(bytes.TrimRight(line, "\r\n")))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// line relays one line.
func (rl *relay) line(s string) {
	rl.tail.add(s)
	if strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: ") {
		rl.panic = true
	}
	if rl.panic {
		rl.log.Error(s)
		return
	}
	if len(s) > 0 && s[0] == '{' {
		if rl.json(s) {
			return
		}
	}
	if s != "" {
		rl.log.Info(s)
	}
}

// json relays an hclog JSON line and reports whether s was one.
func (rl *relay) json(s string) bool {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return false
	}
	msg, ok := m["@message"].(string)
	if !ok {
		return false
	}
	lvl, _ := m["@level"].(string)
	mod, _ := m["@module"].(string)
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, m[k])
	}
	level := hclog.LevelFromString(lvl)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	rl.module(mod).Log(level, msg, args...)
	return true
}

// module returns the logger for the child's module name. The child names
// its loggers from the same root as the supervisor ("regent.replog"); the
// relay's own name ("regent.master") already says where a line came from,
// so the root and a leading "master" are not repeated.
func (rl *relay) module(mod string) hclog.Logger {
	if name := rl.log.Name(); strings.Contains(name, ".") {
		root := name[:strings.LastIndex(name, ".")]
		mod = trimComponent(mod, root)
	}
	mod = trimComponent(mod, "master")
	if mod == "" {
		return rl.log
	}
	l, ok := rl.modules[mod]
	if !ok {
		l = rl.log.Named(mod)
		rl.modules[mod] = l
	}
	return l
}

// trimComponent removes the leading dotted name component prefix from mod.
func trimComponent(mod, prefix string) string {
	if mod == prefix {
		return ""
	}
	if rest, ok := strings.CutPrefix(mod, prefix+"."); ok {
		return rest
	}
	return mod
}
