package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The helper-process pattern: the test binary re-executed with
// SUPERVISOR_TEST_ROLE set plays a scripted child, or a supervisor of such
// children, so real signals, exit codes and the lifeline are exercised.
const (
	envRole    = "SUPERVISOR_TEST_ROLE"
	envScript  = "SUPERVISOR_TEST_SCRIPT"
	envHupFile = "SUPERVISOR_TEST_HUPFILE"
	envState   = "SUPERVISOR_TEST_STATE"
	envStop    = "SUPERVISOR_TEST_STOP_TIMEOUT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "child":
		os.Exit(helperChild(os.Getenv(envScript)))
	case "supervisor":
		os.Exit(helperSupervisor())
	}
	os.Exit(m.Run())
}

// helperChild runs a script of ';'-separated commands:
//
//	ready | json | print TEXT | env NAME | reason TEXT | exit N | panic |
//	selfkill | sleep DURATION | pidfile PATH | serve | hang
//
// serve heartbeats, exits 0 on SIGTERM and appends "hup" to
// $SUPERVISOR_TEST_HUPFILE on SIGHUP; hang ignores SIGTERM. Both run until
// the process ends. A lost lifeline exits 99.
func helperChild(script string) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	c, err := ChildFromEnv(func() {
		fmt.Fprintln(os.Stderr, "lifeline lost, exiting")
		os.Exit(99)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	for _, cmd := range strings.Split(script, ";") {
		verb, arg, _ := strings.Cut(strings.TrimSpace(cmd), " ")
		switch verb {
		case "ready":
			if err := c.Ready(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		case "json":
			l := hclog.New(&hclog.LoggerOptions{Name: "replog", JSONFormat: true, Output: os.Stderr, Level: hclog.Trace})
			l.Warn("lost quorum", "position", 42, "peer", "10.0.0.2:5051")
		case "print":
			fmt.Println(arg)
		case "env":
			fmt.Printf("%s=%s\n", arg, os.Getenv(arg))
		case "reason":
			_ = c.Reason(arg) // the tests check what the supervisor reports
		case "exit":
			n, _ := strconv.Atoi(arg)
			return n
		case "panic":
			panic("boom")
		case "selfkill":
			check(syscall.Kill(os.Getpid(), syscall.SIGKILL))
			select {}
		case "sleep":
			d, _ := time.ParseDuration(arg)
			time.Sleep(d)
		case "pidfile":
			check(os.WriteFile(arg, []byte(strconv.Itoa(os.Getpid())), 0o600))
		case "serve", "hang":
			interval := c.HeartbeatInterval()
			if interval == 0 {
				interval = time.Second
			}
			beat := time.NewTicker(interval)
			for {
				select {
				case <-beat.C:
					_ = c.Heartbeat() // a supervisor that is gone ends this process by the lifeline
				case sig := <-sigs:
					switch {
					case sig == syscall.SIGHUP:
						f, err := os.OpenFile(os.Getenv(envHupFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
						check(err)
						_, err = f.WriteString("hup\n")
						check(errors.Join(err, f.Close()))
					case verb == "serve":
						_ = c.Reason("stopped on SIGTERM")
						return 0
					}
				}
			}
		case "":
		default:
			fmt.Fprintf(os.Stderr, "unknown helper command %q\n", verb)
			return 70
		}
	}
	return 0
}

// helperSupervisor supervises helper children running $SUPERVISOR_TEST_SCRIPT
// with real signal handling, writing its state to $SUPERVISOR_TEST_STATE.
// check ends a helper child with exit code 3 and the error on stderr when
// err is not nil: a scripted step that failed must not look like success.
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper child:", err)
		os.Exit(3)
	}
}

func helperSupervisor() int {
	cfg := helperConfig(os.Getenv(envScript))
	cfg.StatePath = os.Getenv(envState)
	if d, err := time.ParseDuration(os.Getenv(envStop)); err == nil {
		cfg.StopTimeout = d
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Debug})
	cfg.Reload = func(context.Context) (ReloadAction, error) { return ReloadForward, nil }
	s, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	return ExitCode(s.Run(context.Background()))
}

// helperConfig returns a config whose children are this test binary running
// script.
func helperConfig(script string) Config {
	cfg := DefaultConfig()
	cfg.Path = os.Args[0]
	cfg.Args = []string{"-test.run=^$"}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRole+"=") && !strings.HasPrefix(kv, envScript+"=") {
			env = append(env, kv)
		}
	}
	cfg.Env = append(env, envRole+"=child", envScript+"="+script)
	return cfg
}

// readState reads a state file, or returns the zero Status if it is not
// there yet.
func readState(path string) Status {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}
	}
	var s Status
	if json.Unmarshal(b, &s) != nil {
		return Status{}
	}
	return s
}
