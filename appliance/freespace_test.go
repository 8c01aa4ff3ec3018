package appliance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
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

// A starting master waits for free space rather than exiting at once, so a
// supervisor does not spend its restart budget in seconds on a full disk; it
// gives up after the wait with the check's error, and stops waiting when it
// is stopped.
func TestWaitFreeSpace(t *testing.T) {
	t.Parallel()
	full := errors.New("work_dir has 3 MiB free, the master needs at least 64 MiB")
	log := hclog.NewNullLogger()
	tests := []struct {
		name     string
		failures int // checks that fail before one succeeds; -1: never succeeds
		wait     time.Duration
		cancel   bool
		wantErr  bool
		wantStat bool
	}{
		{name: "space at once", failures: 0, wait: time.Hour},
		{name: "space after a few polls", failures: 3, wait: time.Hour, wantStat: true},
		{name: "never: gives up after the wait", failures: -1, wait: 20 * time.Millisecond, wantErr: true, wantStat: true},
		{name: "stopped while waiting", failures: -1, wait: time.Hour, cancel: true, wantErr: true, wantStat: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			check := func() error {
				calls++
				if tc.cancel && calls == 2 {
					cancel()
				}
				if tc.failures < 0 || calls <= tc.failures {
					return full
				}
				return nil
			}
			var stat []string
			err := waitFreeSpace(ctx, check, tc.wait, time.Millisecond, log, func(s string) { stat = append(stat, s) })
			if (err != nil) != tc.wantErr {
				t.Fatalf("waitFreeSpace = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, full) {
				t.Errorf("waitFreeSpace = %v, want it to wrap the check's error", err)
			}
			if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("waitFreeSpace = %v, want it to wrap context.Canceled", err)
			}
			if !tc.wantErr && calls != tc.failures+1 {
				t.Errorf("check called %d times, want %d", calls, tc.failures+1)
			}
			if (len(stat) > 0) != tc.wantStat || (len(stat) > 0 && !strings.Contains(stat[0], full.Error())) {
				t.Errorf("status reports %q, want one naming %q: %v", stat, full, tc.wantStat)
			}
		})
	}
}
