package appliance

import (
	"strings"
	"testing"
)

// A master refuses to start on a work_dir without room for its log, with a
// reason that names the directory (anomaly A2: on a full disk Badger dies by
// SIGBUS instead of returning an error).
func TestCheckFreeSpace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := checkFreeSpace(dir, 1); err != nil {
		t.Fatalf("checkFreeSpace(%s, 1 byte) = %v, want nil", dir, err)
	}
	err := checkFreeSpace(dir, 1<<62)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "MiB free") {
		t.Fatalf("checkFreeSpace(%s, 4 EiB) = %v, want an error naming the directory and its free space", dir, err)
	}
	if err := checkFreeSpace(dir+"/missing", 1); err == nil {
		t.Fatalf("checkFreeSpace on a missing directory = nil, want an error")
	}
}
