//go:build !linux

package appliance

import "io"

// OnJournal reports whether w is the journal's stream; there is no journald
// outside Linux.
func OnJournal(getenv func(string) string, w io.Writer) bool {
	return false
}
