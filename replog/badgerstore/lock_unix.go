//go:build unix

package badgerstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/regent-ha/regent/replog"
)

// lockFileName is regent's own lock, taken before Badger's so that "another
// master is using this directory" is told apart from every other failure
// (Badger's lock error carries no cause to test).
const lockFileName = "regent.lock"

// dirLock is an flock on <dir>/regent.lock, exclusive for a writer and
// shared for a read-only inspector.
type dirLock struct{ f *os.File }

func lockDir(dir string, shared bool) (*dirLock, error) {
	path := filepath.Join(dir, lockFileName)
	flag := os.O_RDWR | os.O_CREATE
	if shared {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		if shared && errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr != nil {
				return nil, fmt.Errorf("open store %s: %w", dir, serr)
			}
			return &dirLock{}, nil // an inspector relies on Badger's shared lock
		}
		return nil, fmt.Errorf("open store %s: lock: %w", dir, err)
	}
	how := syscall.LOCK_EX | syscall.LOCK_NB
	if shared {
		how = syscall.LOCK_SH | syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &replog.InUseError{Dir: dir, Err: err}
		}
		return nil, fmt.Errorf("open store %s: lock: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock; closing the file releases the flock.
func (l *dirLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
