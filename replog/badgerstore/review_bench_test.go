package badgerstore

import (
	"path/filepath"
	"testing"
)

// BenchmarkReviewListDir measures what each sync adds to find the
// write-ahead logs: one listing of the store's directory.
func BenchmarkReviewListDir(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "replicated_log"), Options{GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
}
