package appliance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/supervisor"
)

// faultKind is one kind of fault the nemesis injects.
type faultKind int

const (
	faultKillAppliance faultKind = iota + 1 // kill -9 a whole appliance (supervisor and master), restart it after Hold
	faultKillMaster                         // kill -9 only the master child; its supervisor restarts it
	faultPause                              // SIGSTOP an appliance for Hold (longer than the lease), then SIGCONT
	faultRestartAll                         // kill -9 every appliance at once, restart them all after Hold
	faultWipe                               // stop an appliance, delete its replicated_log, start it after Hold
	faultIsolate                            // cut one master off from the other masters (clients still reach it)
	faultSplit                              // split the masters into a minority and a majority
	faultOneWay                             // drop packets from one master to another, not back
	faultLoss                               // drop a share of all packets between masters
	faultMember                             // remove a follower through the admin API, wipe it, add it back
	faultDiskFull                           // fill a master's work_dir (a small tmpfs) for Hold, then free it
	faultSlow                               // limit one master's peer traffic to Rate kbytes/s each way (chaosNet.slow)
)

var faultNames = map[faultKind]string{
	faultKillAppliance: "kill-appliance",
	faultKillMaster:    "kill-master",
	faultPause:         "pause",
	faultRestartAll:    "restart-all",
	faultWipe:          "wipe",
	faultIsolate:       "isolate",
	faultSplit:         "split",
	faultOneWay:        "one-way",
	faultLoss:          "loss",
	faultMember:        "member",
	faultDiskFull:      "disk-full",
	faultSlow:          "slow",
}

func (k faultKind) String() string {
	if s, ok := faultNames[k]; ok {
		return s
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// network reports whether k needs the network namespaces.
func (k faultKind) network() bool { return k >= faultIsolate && k <= faultLoss || k == faultSlow }

// processFaults and networkFaults are the kinds "process" and "network"
// stand for in -chaos.faults.
var (
	processFaults = []faultKind{faultKillAppliance, faultKillMaster, faultPause, faultRestartAll, faultWipe}
	networkFaults = []faultKind{faultIsolate, faultSplit, faultOneWay, faultLoss, faultSlow}
	// opsFaults are left out of "process" so that the schedules of the
	// seeds measured before they existed stay the same.
	opsFaults = []faultKind{faultMember, faultDiskFull}
)

// parseFaultKinds parses a comma-separated list of fault names, "process",
// "network", "ops" (member and disk-full) or "all".
func parseFaultKinds(s string) ([]faultKind, error) {
	var out []faultKind
	add := func(ks ...faultKind) {
		for _, k := range ks {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "":
		case "process":
			add(processFaults...)
		case "network":
			add(networkFaults...)
		case "ops":
			add(opsFaults...)
		case "all":
			add(processFaults...)
			add(networkFaults...)
			add(opsFaults...)
		default:
			found := false
			for k, n := range faultNames {
				if n == name {
					add(k)
					found = true
				}
			}
			if !found {
				return nil, fmt.Errorf("unknown fault %q (want process, network, ops, all or one of %s)", name, faultNameList())
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no faults given")
	}
	return out, nil
}

func faultNameList() string {
	var names []string
	for k := faultKillAppliance; k <= faultSlow; k++ {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

// fault is one scheduled fault. The nemesis resolves its target when it
// injects it: the leader at that moment when Leader is set (Target when no
// leader is known), else Target.
type fault struct {
	At     time.Duration // since the run started
	Kind   faultKind
	Leader bool
	Target int // master index
	// PeerOffset picks a one-way fault's other end: (target+1+PeerOffset) mod n.
	PeerOffset int
	Hold       time.Duration // how long the fault lasts (down time, pause, partition)
	Loss       int           // loss: percent of packets dropped
	Rate       int           // slow: kbytes per second let through each way
}

// group returns the masters a fault acts on, given its resolved target:
// the minority for split (the target and the masters after it), the
// target and the receiving peer for one-way, the target otherwise.
func (f fault) group(target, n int) []int {
	switch f.Kind {
	case faultSplit:
		var g []int
		for j := range max((n-1)/2, 1) {
			g = append(g, (target+j)%n)
		}
		return g
	case faultOneWay:
		return []int{target, (target + 1 + f.PeerOffset) % n}
	case faultRestartAll, faultLoss:
		return nil
	}
	return []int{target}
}

// String describes f as a schedule line.
func (f fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%5.1fs  %-14s", f.At.Seconds(), f.Kind)
	switch f.Kind {
	case faultRestartAll:
		b.WriteString(" every master      ")
	case faultLoss:
		fmt.Fprintf(&b, " %3d%% of packets  ", f.Loss)
	default:
		who := "m" + strconv.Itoa(f.Target+1)
		if f.Leader {
			who = "leader (else " + who + ")"
		}
		if f.Kind == faultSplit {
			who += " + minority"
		}
		if f.Kind == faultOneWay {
			who += fmt.Sprintf(" → +%d", f.PeerOffset+1)
		}
		if f.Kind == faultSlow {
			who += fmt.Sprintf(" at %d KB/s", f.Rate)
		}
		fmt.Fprintf(&b, " %-18s", who)
	}
	fmt.Fprintf(&b, " for %.1fs", f.Hold.Seconds())
	return b.String()
}

// Schedule bounds.
const (
	chaosWarmup = 3 * time.Second // before the first fault
	chaosTail   = 5 * time.Second // no fault in the last part of a run
)

// chaosSchedule draws the faults of a run from seed: one fault at a time,
// separated by quiet gaps of 1–3 s, none in the first chaosWarmup or the last
// chaosTail of d. The same seed, d, n and kinds give the same schedule.
func chaosSchedule(seed int64, d time.Duration, n int, kinds []faultKind) []fault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973))
	between := func(lo, hi time.Duration) time.Duration {
		// Tenths of a second, so the printed schedule is exact.
		return lo + time.Duration(rng.Int64N(int64((hi-lo)/(100*time.Millisecond))+1))*100*time.Millisecond
	}
	var out []fault
	for t := chaosWarmup; ; {
		f := fault{At: t, Kind: kinds[rng.IntN(len(kinds))], Target: rng.IntN(n), Leader: rng.IntN(2) == 0}
		switch f.Kind {
		case faultKillAppliance:
			f.Hold = between(500*time.Millisecond, 3*time.Second)
		case faultKillMaster:
			f.Hold = between(time.Second, 3*time.Second)
		case faultPause:
			f.Hold = between(2*time.Second, 4*time.Second)
		case faultRestartAll:
			f.Leader, f.Target = false, 0
			f.Hold = between(200*time.Millisecond, 2*time.Second)
		case faultWipe:
			f.Hold = between(0, time.Second)
		case faultIsolate, faultSplit:
			f.Hold = between(2*time.Second, 6*time.Second)
		case faultOneWay:
			f.PeerOffset = rng.IntN(max(n-1, 1))
			f.Hold = between(2*time.Second, 6*time.Second)
		case faultLoss:
			f.Leader, f.Target = false, 0
			f.Loss = 10 + 5*rng.IntN(9)
			f.Hold = between(2*time.Second, 6*time.Second)
		case faultMember:
			f.Leader = false // always a follower: the leader cannot remove itself
			f.Hold = between(0, time.Second)
		case faultDiskFull:
			f.Hold = between(2*time.Second, 6*time.Second)
		case faultSlow:
			f.Rate = 4 << rng.IntN(4) // 4 to 32 kbytes/s: the peers send some tens of kbytes/s each way
			f.Hold = between(2*time.Second, 6*time.Second)
		}
		if t+f.Hold > d-chaosTail {
			return out
		}
		out = append(out, f)
		t += f.Hold + between(time.Second, 3*time.Second)
	}
}

// faultRecord is what the nemesis did for one fault. Times are history
// times (nanoseconds since the run started).
type faultRecord struct {
	Fault   string `json:"fault"`
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Targets []int  `json:"targets,omitempty"`
	Note    string `json:"note,omitempty"`
}

// nemesis injects a schedule's faults into a chaos cluster.
type nemesis struct {
	cc   *chaosCluster
	hist *chaosHistory
	logf func(format string, args ...any)

	mu      sync.Mutex
	records []faultRecord
	revived []string // appliances found exited after a fault and restarted
}

// run injects every fault of sched at its time and heals it after its hold.
// It returns when the schedule is done or ctx ends; every fault it started is
// healed by then.
func (n *nemesis) run(ctx context.Context, sched []fault) error {
	for _, f := range sched {
		if err := waitUntil(ctx, n.hist.start.Add(f.At)); err != nil {
			return nil
		}
		rec, err := n.inject(ctx, f)
		n.mu.Lock()
		n.records = append(n.records, rec)
		n.mu.Unlock()
		if err != nil {
			return fmt.Errorf("inject %s: %w", f.Kind, err)
		}
	}
	return nil
}

// waitUntil waits until t or ctx's end.
func waitUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// hold waits for d, or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	_ = waitUntil(ctx, time.Now().Add(d))
}

// inject performs f, holds it, and heals it.
func (n *nemesis) inject(ctx context.Context, f fault) (faultRecord, error) {
	cc := n.cc
	rec := faultRecord{Fault: f.String(), Start: n.hist.now()}
	target := f.Target
	if f.Leader {
		if l, ok := cc.leader(ctx); ok {
			target = l
			rec.Note = "leader m" + strconv.Itoa(l+1)
		} else {
			rec.Note = "no leader known"
		}
	}
	rec.Targets = f.group(target, len(cc.ms))
	n.logf("nemesis: %s → %v %s", f.Kind, names(rec.Targets), rec.Note)
	var err error
	switch f.Kind {
	case faultKillAppliance:
		m := cc.ms[target]
		m.Kill()
		hold(ctx, f.Hold)
		err = cc.start(target)
	case faultKillMaster:
		st, rerr := supervisor.ReadStatus(filepath.Join(cc.ms[target].WorkDir, StateFileName))
		switch {
		case rerr != nil:
			rec.Note = strings.TrimSpace(rec.Note + " " + rerr.Error())
		case st.ChildPID <= 0 || st.SupervisorPID != cc.ms[target].Pid():
			rec.Note = strings.TrimSpace(rec.Note + " no master child running")
		default:
			if kerr := syscall.Kill(st.ChildPID, syscall.SIGKILL); kerr != nil {
				rec.Note = strings.TrimSpace(rec.Note + " kill child: " + kerr.Error())
			} else {
				rec.Note = strings.TrimSpace(rec.Note + " child pid " + strconv.Itoa(st.ChildPID))
			}
		}
		hold(ctx, f.Hold)
	case faultPause:
		m := cc.ms[target]
		if perr := m.SignalGroup(syscall.SIGSTOP); perr != nil {
			rec.Note = strings.TrimSpace(rec.Note + " " + perr.Error())
		}
		hold(ctx, f.Hold)
		_ = m.SignalGroup(syscall.SIGCONT)
	case faultRestartAll:
		var wg sync.WaitGroup
		for _, m := range cc.ms {
			wg.Go(m.Kill)
		}
		wg.Wait()
		hold(ctx, f.Hold)
		for i := range cc.ms {
			err = errors.Join(err, cc.start(i))
		}
	case faultWipe:
		m := cc.ms[target]
		if serr := m.Stop(15 * time.Second); serr != nil {
			rec.Note = strings.TrimSpace(rec.Note + " " + serr.Error())
		}
		if rerr := os.RemoveAll(filepath.Join(m.WorkDir, "replicated_log")); rerr != nil {
			err = fmt.Errorf("wipe %s: %w", m.Name, rerr)
			break
		}
		hold(ctx, f.Hold)
		err = cc.start(target)
	case faultIsolate, faultSplit:
		err = cc.net.split(rec.Targets)
		if err == nil {
			hold(ctx, f.Hold)
			err = cc.net.heal()
		}
	case faultOneWay:
		err = cc.net.oneWay(rec.Targets[0], rec.Targets[1])
		if err == nil {
			hold(ctx, f.Hold)
			err = cc.net.heal()
		}
	case faultLoss:
		err = cc.net.loss(f.Loss)
		if err == nil {
			hold(ctx, f.Hold)
			err = cc.net.heal()
		}
	case faultSlow:
		err = cc.net.slow(target, f.Rate)
		if err == nil {
			hold(ctx, f.Hold)
			if pkts, bytes, cerr := cc.net.dropped(); cerr == nil {
				rec.Note = strings.TrimSpace(fmt.Sprintf("%s dropped %d packets, %d bytes", rec.Note, pkts, bytes))
			}
			err = cc.net.heal()
		}
	case faultMember:
		err = n.memberCycle(ctx, f, target, &rec)
	case faultDiskFull:
		err = n.diskFull(ctx, f, target, &rec)
	}
	n.reviveExited()
	rec.End = n.hist.now()
	return rec, err
}

// reviveExited restarts every appliance that exited by itself (as systemd's
// Restart=on-failure would) and notes it: an appliance that gives up is
// worth a look.
func (n *nemesis) reviveExited() {
	for i, m := range n.cc.ms {
		if m.Pid() != 0 {
			continue
		}
		err := m.Wait(context.Background())
		note := fmt.Sprintf("%s exited by itself (%v); tail of its log: %s", m.Name, err, lastLine(m.Logs()))
		n.logf("nemesis: %s", note)
		if serr := n.cc.start(i); serr != nil {
			note += "; restart: " + serr.Error()
		}
		n.mu.Lock()
		n.revived = append(n.revived, note)
		n.mu.Unlock()
	}
}

func lastLine(lines []string) string {
	if len(lines) == 0 {
		return "(none)"
	}
	return lines[len(lines)-1]
}

// names renders master indexes as names.
func names(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, "m"+strconv.Itoa(i+1))
	}
	return out
}

func TestChaosSchedule(t *testing.T) {
	t.Parallel()
	all, err := parseFaultKinds("all")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := parseFaultKinds("process")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		d     time.Duration
		n     int
		kinds []faultKind
	}{
		{"short process", 45 * time.Second, 3, proc},
		{"minute all", 60 * time.Second, 5, all},
		{"long all", 30 * time.Minute, 3, all},
		{"too short for any", 8 * time.Second, 3, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := int64(1); seed <= 20; seed++ {
				a := chaosSchedule(seed, tc.d, tc.n, tc.kinds)
				b := chaosSchedule(seed, tc.d, tc.n, tc.kinds)
				if diff := cmp.Diff(a, b, cmp.AllowUnexported(fault{})); diff != "" {
					t.Fatalf("seed %d: two schedules differ (-first +second):\n%s", seed, diff)
				}
				end := chaosWarmup
				for i, f := range a {
					if f.At < end {
						t.Errorf("seed %d fault %d (%s): starts at %v, before the previous one ends at %v", seed, i, f, f.At, end)
					}
					if f.At+f.Hold > tc.d-chaosTail {
						t.Errorf("seed %d fault %d (%s): ends after %v", seed, i, f, tc.d-chaosTail)
					}
					if !slices.Contains(tc.kinds, f.Kind) {
						t.Errorf("seed %d fault %d: kind %s not among %v", seed, i, f.Kind, tc.kinds)
					}
					if f.Target < 0 || f.Target >= tc.n {
						t.Errorf("seed %d fault %d: target %d of %d masters", seed, i, f.Target, tc.n)
					}
					if f.Kind == faultSlow && (f.Rate < 4 || f.Rate > 32) {
						t.Errorf("seed %d fault %d: slow link at %d kbytes/s, want 4 to 32", seed, i, f.Rate)
					}
					if f.Kind == faultPause && f.Hold < 2*time.Second {
						t.Errorf("seed %d fault %d: pause of %v, shorter than a lease", seed, i, f.Hold)
					}
					for _, g := range f.group(f.Target, tc.n) {
						if g < 0 || g >= tc.n {
							t.Errorf("seed %d fault %d: group member %d of %d masters", seed, i, g, tc.n)
						}
					}
					end = f.At + f.Hold
				}
				if tc.d >= 45*time.Second && len(a) < 3 {
					t.Errorf("seed %d: only %d faults in %v", seed, len(a), tc.d)
				}
				if tc.d < chaosWarmup+chaosTail && len(a) != 0 {
					t.Errorf("seed %d: %d faults in a run of %v", seed, len(a), tc.d)
				}
			}
			if tc.d >= 45*time.Second {
				s1, s2 := chaosSchedule(1, tc.d, tc.n, tc.kinds), chaosSchedule(2, tc.d, tc.n, tc.kinds)
				if cmp.Equal(s1, s2) {
					t.Errorf("seeds 1 and 2 gave the same schedule:\n%s", formatSchedule(s1))
				}
			}
		})
	}
}

func TestChaosScheduleCoversEveryKind(t *testing.T) {
	t.Parallel()
	all, err := parseFaultKinds("all")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[faultKind]bool{}
	for seed := int64(1); seed <= 10; seed++ {
		for _, f := range chaosSchedule(seed, 60*time.Second, 3, all) {
			seen[f.Kind] = true
		}
	}
	for _, k := range all {
		if !seen[k] {
			t.Errorf("no %s in ten minute-long schedules", k)
		}
	}
}

func TestChaosParseFaultKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []faultKind
		wantErr bool
	}{
		{in: "process", want: processFaults},
		{in: "network", want: networkFaults},
		{in: "all", want: append(append(append([]faultKind(nil), processFaults...), networkFaults...), opsFaults...)},
		{in: "ops", want: opsFaults},
		{in: "member,disk-full", want: []faultKind{faultMember, faultDiskFull}},
		{in: "pause, wipe,pause", want: []faultKind{faultPause, faultWipe}},
		{in: "one-way,loss", want: []faultKind{faultOneWay, faultLoss}},
		{in: "slow,isolate", want: []faultKind{faultSlow, faultIsolate}},
		{in: "", wantErr: true},
		{in: "meteor", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseFaultKinds(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFaultKinds(%q): got error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseFaultKinds(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestChaosNetworkKinds(t *testing.T) {
	t.Parallel()
	for _, k := range networkFaults {
		if !k.network() {
			t.Errorf("%s: network() = false, want true", k)
		}
	}
	for _, k := range append(append([]faultKind(nil), processFaults...), opsFaults...) {
		if k.network() {
			t.Errorf("%s: network() = true, want false", k)
		}
	}
	if got, want := faultSlow.String(), "slow"; got != want {
		t.Errorf("faultSlow.String() = %q, want %q", got, want)
	}
	if !strings.Contains(faultNameList(), "slow") {
		t.Errorf("faultNameList() = %q, without slow", faultNameList())
	}
}

// formatSchedule renders a schedule, one fault a line.
func formatSchedule(s []fault) string {
	if len(s) == 0 {
		return "  (no faults)\n"
	}
	var b strings.Builder
	for _, f := range s {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
