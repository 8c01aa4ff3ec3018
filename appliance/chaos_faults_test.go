package appliance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file holds the nemesis's membership and disk faults (issue 8).

// Bounds of the member fault's steps.
const (
	chaosMemberStep    = 30 * time.Second // to remove, or to get the leader to take the add
	chaosMemberPromote = 60 * time.Second // for the re-added master to catch up and become a voter
)

// chaosDiskMiB is the size in MiB of the tmpfs each master's work_dir is
// mounted on when the disk-full fault is among a run's faults: twice the free
// space a master needs to start (minFreeBytes), so a master starts on it
// with Badger's files in place, and refuses to while it is filled.
const chaosDiskMiB = 2 * minFreeBytes >> 20

// chaosDiskSize is chaosDiskMiB as a tmpfs size option.
var chaosDiskSize = strconv.Itoa(chaosDiskMiB) + "m"

// chaosFillName is the file the disk-full fault fills a work_dir with.
const chaosFillName = "chaos-fill"

// peerAddr returns master i's peer address, as listed in the whitelists.
func (cc *chaosCluster) peerAddr(i int) string {
	return net.JoinHostPort(cc.hosts[i], strconv.Itoa(cc.ms[i].PeerPort))
}

// adminLeader sends an admin request to the leader, finding it anew and
// retrying until it succeeds or d has passed. done, when set, ends the
// retries on an error it accepts as success.
func (cc *chaosCluster) adminLeader(ctx context.Context, d time.Duration, method, path string, body, out any, done func(error) bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	err := errors.New("no leader known")
	for {
		if l, ok := cc.leader(ctx); ok {
			err = adminDo(ctx, method, cc.url(l), path, body, out)
			if err == nil || (done != nil && done(err)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: %w (last error: %v)", method, path, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// waitMember polls the leader's member list until ok holds for it, or d has
// passed; it returns the last list seen.
func (cc *chaosCluster) waitMember(ctx context.Context, d time.Duration, what string, ok func(membersJSON) bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last membersJSON
	var lastErr error
	for {
		var ms membersJSON
		if l, found := cc.leader(ctx); found {
			lastErr = adminDo(ctx, "GET", cc.url(l), "/replog/members", nil, &ms)
			if lastErr == nil {
				if ok(ms) {
					return nil
				}
				last = ms
			}
		}
		select {
		case <-ctx.Done():
			var states []string
			for _, m := range last.Members {
				states = append(states, m.Address+": "+m.State)
			}
			return fmt.Errorf("not %s after %v (last error %v; members %s)", what, d, lastErr, strings.Join(states, ", "))
		case <-tick.C:
		}
	}
}

// isMember reports whether addr is in ms's membership, and a voter.
func isMember(ms membersJSON, addr string) (member, voter bool) {
	for _, m := range ms.Members {
		if m.Address == addr && m.Member {
			return true, m.Voter
		}
	}
	return false, false
}

// memberCycle removes follower target through the leader's admin API, waits
// until it has left the membership, stops it, wipes its replicated_log, adds
// it back after hold and starts it, and waits until it is a voter again. A
// master removed is always added back, even when a later step fails, so the
// run ends with the original set.
func (n *nemesis) memberCycle(ctx context.Context, f fault, target int, rec *faultRecord) error {
	cc := n.cc
	if l, ok := cc.leader(ctx); ok && l == target {
		target = (target + 1) % len(cc.ms)
	}
	rec.Targets = []int{target}
	m := cc.ms[target]
	addr := cc.peerAddr(target)
	note := func(s string) { rec.Note = strings.TrimSpace(rec.Note + " " + s) }
	n.logf("nemesis: member: remove %s (%s)", m.Name, addr)

	err := cc.adminLeader(ctx, chaosMemberStep, "DELETE", "/replog/members/"+url.PathEscape(addr), nil, nil, nil)
	if err != nil {
		// The removal may have been taken although its answer was lost:
		// add it back below in any case.
		note("remove: " + err.Error())
	} else {
		err = cc.waitMember(ctx, chaosMemberStep, "out of the membership", func(ms membersJSON) bool {
			member, _ := isMember(ms, addr)
			return !member
		})
		if err != nil {
			note("remove: " + err.Error())
		} else {
			note("removed")
		}
	}
	if err == nil {
		if serr := m.Stop(15 * time.Second); serr != nil {
			note("stop: " + serr.Error())
		}
		if rerr := os.RemoveAll(filepath.Join(m.WorkDir, "replicated_log")); rerr != nil {
			err = fmt.Errorf("wipe %s: %w", m.Name, rerr)
		}
		hold(ctx, f.Hold)
	}

	aerr := cc.adminLeader(ctx, chaosMemberStep, "POST", "/replog/members", addJSON{Address: addr}, nil, func(err error) bool {
		return strings.Contains(err.Error(), "already in the masters list")
	})
	if aerr != nil {
		return errors.Join(err, fmt.Errorf("add %s back: %w", m.Name, aerr))
	}
	if m.Pid() == 0 {
		if serr := cc.start(target); serr != nil {
			return errors.Join(err, fmt.Errorf("start %s: %w", m.Name, serr))
		}
	}
	start := time.Now()
	perr := cc.waitMember(ctx, chaosMemberPromote, "a voter again", func(ms membersJSON) bool {
		_, voter := isMember(ms, addr)
		return voter
	})
	if perr != nil {
		return errors.Join(err, fmt.Errorf("%s added back: %w", m.Name, perr))
	}
	note(fmt.Sprintf("added back, a voter %.1fs after its start", time.Since(start).Seconds()))
	return err
}

// chaosDisks are the tmpfs work_dirs of a run with the disk-full fault.
type chaosDisks struct {
	paths []string // mount points, by master index
}

// chaosDiskRe matches the source name of a chaos tmpfs: rgcdisk-<pid>.
var chaosDiskRe = regexp.MustCompile(`^rgcdisk-([0-9]+)$`)

// chaosDiskAvailable returns why work_dirs cannot be put on tmpfs here, or
// "" if they can.
func chaosDiskAvailable() string {
	if os.Geteuid() != 0 {
		return "not root: work_dirs stay on the test's disk, the disk-full fault is skipped"
	}
	return ""
}

// mountChaosDisks mounts a chaosDiskSize tmpfs on each of dirs (created if
// need be), named after this process, so cleanupChaosDiskLeftovers can tell
// a dead run's mounts. On error the mounts made so far are removed.
func mountChaosDisks(dirs []string) (*chaosDisks, error) {
	d := &chaosDisks{}
	src := "rgcdisk-" + strconv.Itoa(os.Getpid())
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, errors.Join(fmt.Errorf("create %s: %w", dir, err), d.Close())
		}
		if err := syscall.Mount(src, dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+chaosDiskSize+",mode=0700"); err != nil {
			return nil, errors.Join(fmt.Errorf("mount tmpfs on %s: %w", dir, err), d.Close())
		}
		d.paths = append(d.paths, dir)
	}
	return d, nil
}

// Close unmounts every mount by its path.
func (d *chaosDisks) Close() error {
	var errs []error
	for _, p := range d.paths {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	d.paths = nil
	return errors.Join(errs...)
}

// cleanupChaosDiskLeftovers unmounts the chaos tmpfs mounts of runs whose
// process is gone, never a live run's.
func cleanupChaosDiskLeftovers() ([]string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var removed []string
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text()) // source mountpoint fstype options 0 0
		if len(fs) < 3 || fs[2] != "tmpfs" {
			continue
		}
		m := chaosDiskRe.FindStringSubmatch(fs[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || pidAlive(pid) {
			continue
		}
		path := unescapeMountPath(fs[1])
		if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
			continue
		}
		removed = append(removed, "tmpfs "+path)
	}
	return removed, errors.Join(append(errs, sc.Err())...)
}

// unescapeMountPath undoes /proc/mounts' octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fillDisk writes zeros to path until the file system is full; it returns
// the bytes written and the error that stopped it, ENOSPC when it worked.
func fillDisk(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create fill file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
	}
}

// diskFull fills target's work_dir for f.Hold, then frees it.
func (n *nemesis) diskFull(ctx context.Context, f fault, target int, rec *faultRecord) error {
	note := func(s string) { rec.Note = strings.TrimSpace(rec.Note + " " + s) }
	if n.cc.disks == nil {
		note("skipped: work_dirs not on tmpfs (" + chaosDiskAvailable() + ")")
		n.logf("nemesis: disk-full skipped: work_dirs not on tmpfs")
		hold(ctx, f.Hold)
		return nil
	}
	path := filepath.Join(n.cc.ms[target].WorkDir, chaosFillName)
	written, err := fillDisk(path)
	if !errors.Is(err, syscall.ENOSPC) {
		_ = os.Remove(path)
		return fmt.Errorf("fill %s: %w after %d bytes", path, err, written)
	}
	note(fmt.Sprintf("filled with %d MiB", written>>20))
	hold(ctx, f.Hold)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("free %s: %w", path, err)
	}
	return nil
}

// setupChaosDisks puts every master's work_dir on its own tmpfs, removed by
// path when t ends, so the disk-full fault can fill any of them. Not as
// root, it logs why and leaves the work_dirs where they are.
func setupChaosDisks(t testing.TB, cc *chaosCluster) {
	if why := chaosDiskAvailable(); why != "" {
		t.Logf("disk-full: %s", why)
		return
	}
	if removed, err := cleanupChaosDiskLeftovers(); err != nil {
		t.Fatalf("clean up tmpfs leftovers of earlier runs: %v", err)
	} else if len(removed) > 0 {
		t.Logf("removed leftovers of earlier runs: %s", strings.Join(removed, ", "))
	}
	var dirs []string
	for _, m := range cc.ms {
		dirs = append(dirs, m.WorkDir)
	}
	d, err := mountChaosDisks(dirs)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the cluster's stop, so it runs after it.
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("remove chaos tmpfs mounts: %v", err)
		}
	})
	cc.disks = d
	t.Logf("disk-full: each work_dir on a %s tmpfs", chaosDiskSize)
}

func TestChaosUnescapeMountPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/tmp/a", "/tmp/a"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/tab\011x\134`, "/tmp/tab\tx\\"},
		{`/x\1`, `/x\1`},
	}
	for _, tc := range tests {
		if got := unescapeMountPath(tc.in); got != tc.want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestChaosDisks mounts two chaos tmpfs work_dirs, fills one to ENOSPC, and
// checks that the leftover cleanup spares a live run's mounts and Close
// removes them.
func TestChaosDisks(t *testing.T) {
	if why := chaosDiskAvailable(); why != "" {
		t.Skip(why)
	}
	t.Parallel()
	dir := t.TempDir()
	dirs := []string{filepath.Join(dir, "m1"), filepath.Join(dir, "m2")}
	d, err := mountChaosDisks(dirs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	mounted := func(p string) bool {
		b, err := os.ReadFile("/proc/self/mounts")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), " "+p+" tmpfs ")
	}
	for _, p := range dirs {
		if !mounted(p) {
			t.Fatalf("%s: not a tmpfs mount", p)
		}
	}
	n, err := fillDisk(filepath.Join(dirs[0], chaosFillName))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fillDisk: %v after %d bytes, want ENOSPC", err, n)
	}
	if n < (chaosDiskMiB-4)<<20 || n > chaosDiskMiB<<20 {
		t.Errorf("fillDisk wrote %d bytes into a %s tmpfs", n, chaosDiskSize)
	}
	if err := os.WriteFile(filepath.Join(dirs[0], "more"), make([]byte, 8192), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write to the full tmpfs: %v, want ENOSPC", err)
	}
	if err := os.WriteFile(filepath.Join(dirs[1], "more"), make([]byte, 8192), 0o600); err != nil {
		t.Errorf("write to the other tmpfs: %v", err)
	}
	// A master starts on an empty chaos tmpfs, and not on a full one.
	if err := checkFreeSpace(dirs[1], minFreeBytes); err != nil {
		t.Errorf("free space of an empty chaos tmpfs: %v", err)
	}
	if err := checkFreeSpace(dirs[0], minFreeBytes); err == nil {
		t.Errorf("free space of a full chaos tmpfs: no error, want one")
	}
	removed, err := cleanupChaosDiskLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if strings.HasPrefix(r, "tmpfs "+dir) {
			t.Errorf("leftover cleanup removed this run's %s", r)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range dirs {
		if mounted(p) {
			t.Errorf("%s: still mounted after Close", p)
		}
	}
}
