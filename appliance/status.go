package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/supervisor"
)

// ExitNotRunning is what "regent status" returns when no supervisor runs
// (the LSB status convention: program is not running).
const ExitNotRunning = 3

// cmdStatus runs "regent status": the local supervisor's state, read from its
// state file under work_dir without asking the master, then the cluster view.
// It returns ExitOK when the supervisor runs, ExitNotRunning when it does not
// (or never wrote its state), ExitFailure when the state cannot be read.
func cmdStatus(ctx context.Context, e *Env, args []string) int {
	flags := e.flagSet()
	cf := addConfigFlags(flags)
	asJSON := flags.Bool("json", false, "print the supervisor's state file as JSON")
	lines := flags.Int("lines", 20, "how many of the master's last output lines to show after an exit")
	address := flags.String("address", "", "`URL` of the master to ask for the cluster view (default: the local master, from the configuration)")
	if code, ok := e.parseFlags(flags, args); !ok {
		return code
	}
	if code, ok := e.noArgs(flags); !ok {
		return code
	}
	c, code, ok := e.loadConfig(cf)
	if !ok {
		return code
	}
	path := filepath.Join(c.WorkDir, StateFileName)
	st, err := supervisor.ReadStatus(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.Stdout, "supervisor: not running (no state file %s)\n", path)
		if *address != "" {
			if err := clusterStatus(ctx, e, c, *address); err != nil {
				fmt.Fprintf(e.Stderr, "regent status: cluster: %v\n", err)
			}
		}
		return ExitNotRunning
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "regent status: %v\n", err)
		return ExitFailure
	}
	alive := processAlive(st.SupervisorPID)
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintf(e.Stderr, "regent status: %v\n", err)
			return ExitFailure
		}
	} else {
		writeSupervisorStatus(e.Stdout, &st, alive, time.Now(), *lines)
		if err := clusterStatus(ctx, e, c, *address); err != nil {
			fmt.Fprintf(e.Stderr, "regent status: cluster: %v\n", err)
		}
	}
	if !alive {
		return ExitNotRunning
	}
	return ExitOK
}

// clusterStatus prints the cluster view (status_cluster.go) after the
// local supervisor's state: what the master at addr (default: the local
// one) says about the replicated log, and the leader's view of every member.
func clusterStatus(ctx context.Context, e *Env, c *Config, addr string) error {
	if addr == "" {
		addr = localAdminAddress(c)
	}
	v, err := fetchClusterView(ctx, addr)
	if err != nil {
		return err
	}
	writeClusterView(e.Stdout, addr, v)
	return nil
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// writeSupervisorStatus prints st for people.
func writeSupervisorStatus(w io.Writer, st *supervisor.Status, alive bool, now time.Time, lines int) {
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), now.Sub(t).Round(time.Second))
	}
	state := st.State.String()
	if !alive {
		state = fmt.Sprintf("not running (last state %s, pid %d gone)", state, st.SupervisorPID)
	}
	fmt.Fprintf(w, "supervisor:  %s\n", state)
	if alive {
		fmt.Fprintf(w, "pid:         %d\n", st.SupervisorPID)
	}
	if st.ChildPID != 0 && (st.State == supervisor.StateStarting || st.State == supervisor.StateRunning || st.State == supervisor.StateStopping) {
		fmt.Fprintf(w, "master pid:  %d\n", st.ChildPID)
	}
	if !st.StartedAt.IsZero() {
		fmt.Fprintf(w, "started:     %s\n", ago(st.StartedAt))
	}
	if !st.ReadyAt.IsZero() {
		fmt.Fprintf(w, "ready:       %s\n", ago(st.ReadyAt))
	}
	fmt.Fprintf(w, "restarts:    %d\n", st.Restarts)
	if st.State == supervisor.StateBackoff && !st.NextStartAt.IsZero() {
		fmt.Fprintf(w, "next start:  in %s (backoff %s)\n", st.NextStartAt.Sub(now).Round(time.Millisecond), st.NextBackoff)
	}
	if st.ChildStatus != "" {
		fmt.Fprintf(w, "master says: %s\n", st.ChildStatus)
	}
	if st.LastExit != "" {
		reason := ""
		if st.LastReason != "" {
			reason = ": " + st.LastReason
		}
		fmt.Fprintf(w, "last exit:   %s%s, %s\n", st.LastExit, reason, ago(st.LastExitAt))
	}
	if st.ReloadError != "" {
		fmt.Fprintf(w, "reload failed:\n  %s\n", strings.ReplaceAll(st.ReloadError, "\n", "\n  "))
	}
	if n := min(lines, len(st.LastOutput)); n > 0 && st.LastExit != "" {
		fmt.Fprintf(w, "last output of the master before it exited:\n")
		for _, l := range st.LastOutput[len(st.LastOutput)-n:] {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}
