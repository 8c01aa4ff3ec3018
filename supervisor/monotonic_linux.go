package supervisor

import "golang.org/x/sys/unix"

// monotonicUSec returns CLOCK_MONOTONIC in microseconds, as systemd wants in
// MONOTONIC_USEC; 0 if unavailable.
func monotonicUSec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
