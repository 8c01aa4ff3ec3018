//go:build !unix

package badgerstore

import "io/fs"

// allocated returns the file's size where block counts are not known.
func allocated(info fs.FileInfo) int64 { return info.Size() }
