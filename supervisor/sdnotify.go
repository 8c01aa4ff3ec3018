package supervisor

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// sdNotify sends state, one or more newline-separated sd_notify assignments,
// to systemd's notification socket. An empty socket means the process is not
// run by systemd with Type=notify and is not an error. Names starting with
// '@' are abstract sockets; the net package maps '@' to the leading NUL.
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: write %s: %w", socket, err)
	}
	return nil
}

// systemdEnv is what systemd told the supervisor through its environment.
type systemdEnv struct {
	socket   string        // NOTIFY_SOCKET, or empty
	watchdog time.Duration // WATCHDOG_USEC if meant for this process, or 0
}

// parseSystemdEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from
// env for the process pid, and returns env without them (and without the
// supervisor's private variables), ready for the child.
func parseSystemdEnv(env []string, pid int) (systemdEnv, []string) {
	var sd systemdEnv
	var usec, wpid string
	rest := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET":
			sd.socket = v
		case "WATCHDOG_USEC":
			usec = v
		case "WATCHDOG_PID":
			wpid = v
		case EnvLifelineFD, EnvNotifyFD, EnvHeartbeatUSec:
		default:
			rest = append(rest, kv)
		}
	}
	if n, err := strconv.ParseInt(usec, 10, 64); err == nil && n > 0 {
		if p, err := strconv.Atoi(wpid); wpid == "" || (err == nil && p == pid) {
			sd.watchdog = time.Duration(n) * time.Microsecond
		}
	}
	return sd, rest
}
