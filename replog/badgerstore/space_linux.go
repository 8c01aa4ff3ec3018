package badgerstore

import (
	"os"
	"syscall"
)

// freeBytes returns the bytes of dir's file system available to this
// process.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// preallocate allocates blocks for the first n bytes of f, or all of it if it
// is smaller (mode 0 within its size: holes are filled, the size does not
// change), so writes there through a mapping of it can never fault for lack
// of space.
func preallocate(f *os.File, n int64) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if n = min(n, info.Size()); n <= 0 {
		return nil
	}
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, n)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EOPNOTSUPP, syscall.ENOSYS:
			// The file system cannot preallocate (some ZFS, NFS): the
			// reserve is the only guard there.
			return nil
		}
		return err
	}
}
