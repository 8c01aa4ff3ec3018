//go:build !linux

package supervisor

// monotonicUSec returns 0: MONOTONIC_USEC is only meaningful to systemd.
func monotonicUSec() int64 { return 0 }
