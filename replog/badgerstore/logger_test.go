package badgerstore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestBadgerLoggerPassesWarningsAndErrorsOnly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := badgerLogger{l: hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace})}
	l.Debugf("debug %d\n", 1)
	l.Infof("info %d\n", 2)
	l.Warningf("warning %d\n", 3)
	l.Errorf("error %d\n", 4)
	out := buf.String()
	for _, want := range []string{"[WARN]  storage engine warning: detail=\"warning 3\"", "[ERROR] storage engine error: detail=\"error 4\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "debug 1") || strings.Contains(out, "info 2") {
		t.Errorf("debug or info passed through:\n%s", out)
	}
}
