package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests run the real regent binary: "regent run" appliances
// on loopback, each supervising its "regent master". They are skipped with
// -short. buildRegent builds the binary once per test process.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary built for the end-to-end tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildRegent returns the path of a regent binary built from this tree,
// building it on first use. It skips the test under -short.
func buildRegent(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "regent-e2e-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "regent")
		cmd := exec.Command("go", "build", "-o", buildPath, "../cmd/regent")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// newTestCluster defines (does not start) n masters with the given quorum in
// a temporary directory; every master is stopped at the end of the test and
// its last log lines are printed if the test failed.
func newTestCluster(t *testing.T, n, quorum int) *localCluster {
	t.Helper()
	c := &localCluster{Binary: buildRegent(t), Dir: t.TempDir(), Cluster: "e2e"}
	if os.Getenv("REGENT_E2E_LOGS") != "" {
		c.Output, c.Pretty = os.Stderr, true
	}
	if n > 0 {
		if _, err := c.Add(n, quorum); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := c.StopAll(20 * time.Second); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		if t.Failed() {
			for _, m := range c.Masters() {
				lines := m.Logs()
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("last lines of %s:\n%s", m.Name, strings.Join(lines, "\n"))
			}
		}
	})
	return c
}

// startAll starts every defined master that is not running.
func startAll(t *testing.T, c *localCluster) {
	t.Helper()
	for _, m := range c.Masters() {
		if m.Pid() == 0 {
			if err := c.Start(m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitLeader waits up to d for the running masters to agree on a leader.
func waitLeader(t *testing.T, c *localCluster, d time.Duration) *localMaster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	l, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// httpResult is one HTTP exchange as the tests see it.
type httpResult struct {
	Code   int
	Header http.Header
	Body   []byte
}

// do sends one request to base+path without following redirects.
func do(t testing.TB, method, url, contentType string, body string) httpResult {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := noRedirectClient.Do(req)
	if err != nil {
		return httpResult{Code: 0, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

// doLeader sends a request to m and follows at most one 307 to the leader,
// as a Mesos client does; it retries 503s until the deadline.
func doLeader(t testing.TB, c *localCluster, m *localMaster, method, path, contentType, body string, deadline time.Duration) httpResult {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		r := do(t, method, m.APIURL()+path, contentType, body)
		if r.Code == http.StatusTemporaryRedirect {
			loc := r.Header.Get("Location")
			r = do(t, method, "http:"+loc, contentType, body)
		}
		if (r.Code != http.StatusServiceUnavailable && r.Code != 0 && r.Code != http.StatusTemporaryRedirect) || time.Now().After(end) {
			return r
		}
		time.Sleep(20 * time.Millisecond) // polling a real cluster; not synchronisation of our own code
	}
}

// weights reads /master/weights through m, following the redirect.
func weights(t testing.TB, c *localCluster, m *localMaster) map[string]float64 {
	t.Helper()
	r := doLeader(t, c, m, http.MethodGet, "/master/weights", "", "", 30*time.Second)
	if r.Code != http.StatusOK {
		t.Fatalf("GET /master/weights via %s: %d %s", m.Name, r.Code, r.Body)
	}
	var ws []struct {
		Role   string  `json:"role"`
		Weight float64 `json:"weight"`
	}
	if err := json.Unmarshal(r.Body, &ws); err != nil {
		t.Fatalf("decode weights %s: %v", r.Body, err)
	}
	out := map[string]float64{}
	for _, w := range ws {
		out[w.Role] = w.Weight
	}
	return out
}

// putWeight sets one role's weight through m and reports whether the write
// was acknowledged (200).
func putWeight(t testing.TB, c *localCluster, m *localMaster, role string, w float64, deadline time.Duration) bool {
	t.Helper()
	body := fmt.Sprintf(`[{"role":%q,"weight":%g}]`, role, w)
	r := doLeader(t, c, m, http.MethodPut, "/master/weights", "application/json", body, deadline)
	return r.Code == http.StatusOK
}
