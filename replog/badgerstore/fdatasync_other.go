//go:build !linux

package badgerstore

import "os"

// fdatasync writes f to disk; without fdatasync, with fsync.
func fdatasync(f *os.File) error { return f.Sync() }
