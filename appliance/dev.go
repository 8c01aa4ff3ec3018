package appliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// cmdDev runs "regent dev": a whole local cluster of supervised masters on
// loopback, for a first look. It writes one configuration per master under
// the data directory, starts "regent run" for each, prints their URLs and a
// few commands to try, and stops them all on Ctrl-C.
func cmdDev(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	n := fs.Int("masters", 3, "number of masters (odd: 1, 3, 5, …)")
	dir := fs.String("dir", "", "directory for configurations and data (default: a new temporary directory, removed at exit)")
	quiet := fs.Bool("quiet", false, "do not relay the masters' logs")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	if *n < 1 || *n > 9 {
		return e.usageError("-masters must be between 1 and 9, not %d", *n)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(e.Stderr, "regent dev: find own executable: %v\n", err)
		return ExitFailure
	}
	keep := *dir != ""
	d := *dir
	if keep {
		if d, err = filepath.Abs(d); err == nil {
			err = os.MkdirAll(d, 0o700)
		}
	} else {
		d, err = os.MkdirTemp("", "regent-dev-")
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "regent dev: data directory: %v\n", err)
		return ExitFailure
	}
	if !keep {
		defer os.RemoveAll(d)
	}

	c := &localCluster{Binary: exe, Dir: d, Cluster: "dev", Pretty: true}
	if !*quiet {
		c.Output = e.Stderr
	}
	ms, err := c.Add(*n, *n/2+1)
	if err != nil {
		fmt.Fprintf(e.Stderr, "regent dev: %v\n", err)
		return ExitFailure
	}
	for _, m := range ms {
		if err := c.Start(m); err != nil {
			fmt.Fprintf(e.Stderr, "regent dev: %v\n", err)
			_ = c.StopAll(15 * time.Second)
			return ExitFailure
		}
	}

	fmt.Fprintf(e.Stdout, "regent dev: %d masters (quorum %d), data in %s\n", *n, *n/2+1, d)
	for _, m := range ms {
		fmt.Fprintf(e.Stdout, "  %s  api %s  peer %s  config %s\n", m.Name, m.APIURL(), m.PeerAddr(), m.Config)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	leader, err := c.WaitLeader(wctx)
	cancel()
	switch {
	case err == nil:
		fmt.Fprintf(e.Stdout, "leader: %s (%s)\n", leader.Name, leader.APIURL())
	case ctx.Err() == nil:
		fmt.Fprintf(e.Stdout, "no leader yet: %v\n", err)
	}
	first := ms[0].APIURL()
	fmt.Fprintf(e.Stdout, `
Try (any master answers; -L follows the redirect to the leader):
  curl -sL %[1]s/master/state | head -c 400; echo
  curl -sL -X PUT -d '[{"role":"analytics","weight":2.5}]' %[1]s/master/weights
  curl -sL %[1]s/master/weights
  curl -sL -H 'Content-Type: application/json' -d '{"type":"GET_MASTER"}' %[1]s/api/v1
  %[2]s status -address %[1]s
Ctrl-C stops every master.
`, first, exe)

	<-ctx.Done()
	fmt.Fprintf(e.Stdout, "regent dev: stopping\n")
	if err := c.StopAll(15 * time.Second); err != nil {
		fmt.Fprintf(e.Stderr, "regent dev: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
