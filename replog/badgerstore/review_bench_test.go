package badgerstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReviewListDir measures what each sync adds to find the
// write-ahead logs: one listing of the store's directory, fresh and with 100
// more files (tables of a store that has grown).
func BenchmarkReviewListDir(b *testing.B) {
	for _, extra := range []int{0, 100} {
		b.Run(fmt.Sprintf("extra=%d", extra), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "replicated_log")
			s, err := Open(dir, Options{GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range extra {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("review%06d.extra", i)), nil, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			names, err := s.ls.list()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ls.list(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(names)), "entries")
		})
	}
}
