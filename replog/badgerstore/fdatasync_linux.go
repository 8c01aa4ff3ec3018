package badgerstore

import (
	"os"
	"syscall"
)

// fdatasync writes f's data (and the metadata needed to read it) to disk.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
