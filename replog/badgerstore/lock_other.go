//go:build !unix

package badgerstore

// dirLock is a no-op where flock does not exist; Badger's own lock still
// refuses a second process.
type dirLock struct{}

func lockDir(string, bool) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() {}
