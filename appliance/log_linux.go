package appliance

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// OnJournal reports whether w is the stream systemd connected to the journal:
// systemd sets JOURNAL_STREAM to that stream's "device:inode", and a process
// whose stderr was redirected elsewhere must not add priority prefixes.
func OnJournal(getenv func(string) string, w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || getenv == nil {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}
