package badgerstore

import (
	"fmt"
	"io/fs"
	"path/filepath"
)

// Usage is the space a store takes on disk.
type Usage struct {
	// Allocated is the bytes of disk blocks allocated to the store's files.
	// Badger preallocates sparse files (the memtable's WAL, the value log),
	// so this is what "how much disk does it take" means.
	Allocated int64
	// Apparent is the sum of the files' sizes, sparse holes included.
	Apparent int64
	// LSM and ValueLog are Badger's own estimates of its two parts.
	LSM, ValueLog int64
}

// DiskUsage reports the space the store takes on disk.
func (s *Store) DiskUsage() (Usage, error) {
	var u Usage
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		u.Apparent += info.Size()
		u.Allocated += allocated(info)
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage of %s: %w", s.dir, err)
	}
	u.LSM, u.ValueLog = s.db.Size()
	return u, nil
}
