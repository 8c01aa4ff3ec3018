//go:build !linux

package badgerstore

import (
	"math"
	"os"
)

// freeBytes reports unlimited space where statfs is not used.
func freeBytes(string) (uint64, error) { return math.MaxUint64, nil }

// preallocate does nothing where fallocate does not exist.
func preallocate(*os.File, int64) error { return nil }
