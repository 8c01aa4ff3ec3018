package badgerstore

import (
	"fmt"
	"syscall"
)

// NoSpaceError is returned (wrapped) by [Store.Save] when the file system of
// the store's directory has less free space than the save may need: Badger
// writes its write-ahead logs and tables through memory-mapped files, and a
// page the file system cannot back there kills the process with SIGBUS
// instead of returning an error, so the store refuses the write first (see
// [Options.FreeSpaceReserve]). It is also returned when preallocating a
// write-ahead log fails for lack of space. It matches syscall.ENOSPC with
// errors.Is.
type NoSpaceError struct {
	Dir     string // the store's directory
	Free    uint64 // bytes available to the process
	Reserve uint64 // bytes the save needed free
	Err     error  // the cause, if an operation failed (else ENOSPC)
}

// Error names the directory, its free space and the reserve.
func (e *NoSpaceError) Error() string {
	if e.Err != nil && e.Err != syscall.ENOSPC {
		return fmt.Sprintf("work_dir %s: out of space: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("work_dir %s: %d MiB free, below the reserve of %d MiB", e.Dir, e.Free>>20, e.Reserve>>20)
}

// Unwrap returns the cause, syscall.ENOSPC unless an operation failed
// otherwise.
func (e *NoSpaceError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return syscall.ENOSPC
}
