package appliance

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/go-cmp/cmp"
)

// The chaos harness checks three parts of the registry. The weights (a map
// role → weight) are checked in two ways. Register roles ("r0", "r1", …) are
// overwritten by many writes and checked for linearizability with porcupine,
// partitioned by role. Ledger roles ("l<seq>") are written once each, never
// overwritten, and checked directly: an acknowledged ledger write must be
// visible to every read invoked after it returned, and to the final read on
// the leader. Every read lists every ledger role, so a run issues at most
// a budget of them (chaosWorkload.LedgerBudget), and a read keeps those it
// saw as a bitset over their dense index (chaosOp.Ledger).
//
// Quota roles ("q0", "q1", …) are registers too: a set's guarantee is its
// sequence number, a removal writes 0 (no quota). The maintenance schedule
// is one register: a write replaces it with one window whose machine's
// hostname carries the sequence number (0 = no schedule). Both are checked
// with porcupine like the weight registers, each quota role and the
// schedule in a partition of its own.
//
// Every write carries a value unique in the run (a global sequence number),
// except a quota removal, so a read's value names the one write it came from.

// chaosOpKind is the kind of one recorded registry operation.
type chaosOpKind int

const (
	chaosWrite chaosOpKind = iota + 1 // PUT /master/weights with one role; POST or DELETE quota; POST the schedule
	chaosRead                         // GET /master/weights, /master/quota or /master/maintenance/schedule
)

func (k chaosOpKind) String() string {
	switch k {
	case chaosWrite:
		return "write"
	case chaosRead:
		return "read"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// chaosTarget is the part of the registry an operation reads or writes.
type chaosTarget int

const (
	targetWeights  chaosTarget = iota // the weights (the zero value)
	targetQuota                       // the quota of roles "q<n>"
	targetSchedule                    // the maintenance schedule
)

func (t chaosTarget) String() string {
	switch t {
	case targetWeights:
		return "weights"
	case targetQuota:
		return "quota"
	case targetSchedule:
		return "schedule"
	}
	return "target(" + strconv.Itoa(int(t)) + ")"
}

// scheduleRole is the Role of the schedule's operations: it is one register.
const scheduleRole = "schedule"

// chaosOutcome is what a client learnt about one operation.
type chaosOutcome int

const (
	chaosOK      chaosOutcome = iota + 1 // acknowledged (200)
	chaosFailed                          // definitely had no effect (refused before sending, 400, no leader reached)
	chaosUnknown                         // may or may not have taken effect (timeout or reset after sending, 5xx on a write)
)

func (o chaosOutcome) String() string {
	switch o {
	case chaosOK:
		return "ok"
	case chaosFailed:
		return "failed"
	case chaosUnknown:
		return "unknown"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// chaosOp is one recorded client call. Times are nanoseconds since the run
// started (monotonic).
type chaosOp struct {
	Client int         `json:"client"`
	Kind   chaosOpKind `json:"kind"`
	// Target is the registry part; the zero value, the weights, is left
	// out of the history file.
	Target  chaosTarget        `json:"target,omitempty"`
	Role    string             `json:"role,omitempty"`   // write: the role written (scheduleRole for the schedule)
	Weight  float64            `json:"weight,omitempty"` // write: the unique value (0: a quota removal)
	Call    int64              `json:"call"`
	Return  int64              `json:"return"` // when the client gave up or got its answer
	Outcome chaosOutcome       `json:"outcome"`
	Weights map[string]float64 `json:"weights,omitempty"` // read: what it returned, role → value (the schedule: scheduleRole → its value, absent if empty)
	// Ledger is the set of ledger roles a weights read saw as "l<n>" with
	// weight n, which Weights then leaves out: a bitset over their
	// writes' LedgerIndex (bit i is bit i%64 of word i/64), so a read
	// retains at most LedgerBudget/8 bytes however many it saw. A ledger
	// role with any other weight stays in Weights.
	Ledger []uint64 `json:"ledger,omitempty"`
	// LedgerStray holds, sorted, the n of the roles "l<n>" with weight n
	// that a read saw though no ledger write was issued for them: each is
	// a violation, so the slice stays short.
	LedgerStray []int64 `json:"ledger_stray,omitempty"`
	// LedgerIndex is a ledger write's dense index, assigned in order as
	// the history issued it (chaosHistory.issueLedger).
	LedgerIndex int      `json:"ledger_index,omitempty"`
	Hops        []string `json:"hops,omitempty"` // masters asked, in order, with their answers
	Err         string   `json:"error,omitempty"`
	// Server is the master that answered an acknowledged call (host:port),
	// Epoch the leadership it served under (its master.LeaderEpochHeader,
	// 0 if absent); checkStaleReads checks them.
	Server string `json:"server,omitempty"`
	Epoch  int64  `json:"epoch,omitempty"`
}

// isLedgerRole reports whether role is a write-once ledger role.
func isLedgerRole(role string) bool { return strings.HasPrefix(role, "l") }

// ledgerRole is the ledger role written with seq.
func ledgerRole(seq int64) string { return "l" + strconv.FormatInt(seq, 10) }

// roleWeight is one entry of a GET /master/weights body.
type roleWeight struct {
	Role   string  `json:"role"`
	Weight float64 `json:"weight"`
}

// splitLedger sorts the roles a weights read returned. A role "l<n>" with
// weight n goes to the bitset ledger if index(n) gives its write's dense
// index (below issued, the number of ledger writes issued so far), else to
// stray (sorted); every other role goes to ws. A role listed twice is an
// error.
func splitLedger(infos []roleWeight, index func(seq int64) (int, bool), issued int) (ws map[string]float64, ledger []uint64, stray []int64, err error) {
	ws = map[string]float64{}
	for _, i := range infos {
		seq := int64(i.Weight)
		if isLedgerRole(i.Role) && float64(seq) == i.Weight && ledgerRole(seq) == i.Role {
			if idx, ok := index(seq); ok && idx >= 0 && idx < issued {
				if ledger == nil {
					ledger = make([]uint64, (issued+63)/64)
				}
				if ledgerHas(ledger, idx) {
					return nil, nil, nil, fmt.Errorf("role %q listed twice", i.Role)
				}
				ledger[idx/64] |= 1 << (idx % 64)
				continue
			}
			stray = append(stray, seq)
			continue
		}
		if _, dup := ws[i.Role]; dup {
			return nil, nil, nil, fmt.Errorf("role %q listed twice", i.Role)
		}
		ws[i.Role] = i.Weight
	}
	slices.Sort(stray)
	for k := 1; k < len(stray); k++ {
		if stray[k] == stray[k-1] {
			return nil, nil, nil, fmt.Errorf("role %q listed twice", ledgerRole(stray[k]))
		}
	}
	return ws, ledger, stray, nil
}

// ledgerHas reports whether bit i of the bitset set is set.
func ledgerHas(set []uint64, i int) bool {
	return i >= 0 && i/64 < len(set) && set[i/64]&(1<<(i%64)) != 0
}

// ledgerSeen calls yield with each ledger role a read saw, and its weight.
// writes holds the history's ledger writes by LedgerIndex; a bit no write
// of the history has is yielded as "l#<index>", which no write wrote.
func (op chaosOp) ledgerSeen(writes map[int]chaosOp) func(yield func(role string, w float64) bool) {
	return func(yield func(role string, w float64) bool) {
		for wi, word := range op.Ledger {
			for word != 0 {
				idx := wi*64 + bits.TrailingZeros64(word)
				word &= word - 1
				role, w := "l#"+strconv.Itoa(idx), float64(0)
				if wr, ok := writes[idx]; ok {
					role, w = wr.Role, wr.Weight
				}
				if !yield(role, w) {
					return
				}
			}
		}
		for _, seq := range op.LedgerStray {
			if !yield(ledgerRole(seq), float64(seq)) {
				return
			}
		}
		for r, w := range op.Weights {
			if isLedgerRole(r) && !yield(r, w) {
				return
			}
		}
	}
}

// sawLedger reports whether a read saw the role of the ledger write wr
// (with any weight).
func (op chaosOp) sawLedger(wr chaosOp) bool {
	if ledgerHas(op.Ledger, wr.LedgerIndex) {
		return true
	}
	if _, ok := op.Weights[wr.Role]; ok {
		return true
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(wr.Role, "l"), 10, 64)
	if err != nil {
		return false
	}
	_, found := slices.BinarySearch(op.LedgerStray, seq)
	return found
}

// ledgerWrite reports whether op writes a write-once ledger role's weight.
func (op chaosOp) ledgerWrite() bool {
	return op.Kind == chaosWrite && op.Target == targetWeights && isLedgerRole(op.Role)
}

// registerKey names the porcupine partition of target's role.
func registerKey(target chaosTarget, role string) string {
	if target == targetWeights {
		return role
	}
	return target.String() + "/" + role
}

// chaosInput is a porcupine operation's input: one write, or a read
// projected onto one register.
type chaosInput struct {
	Kind   chaosOpKind
	Target chaosTarget
	Key    string  // the register (registerKey); empty for a whole read
	Weight float64 // write: the value written
	// Unknown marks a write whose outcome the client does not know.
	Unknown bool
}

// chaosOutput is a porcupine operation's output: for a read, the whole
// target until the partition projects it onto Key, then the register's
// value.
type chaosOutput struct {
	Values map[string]float64 // whole read, before projection: key → value
	Weight float64            // projected read: the register's value, 0 if absent
}

// chaosInfinity is the return time of an operation that never returned, for
// porcupine: it can be linearized at any point after its call.
const chaosInfinity = math.MaxInt64

// chaosModel is the registry's sequential specification, partitioned by
// register (a weight role, a quota role, the schedule): each partition is
// one register whose state is its value (0 = none).
func chaosModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByRole,
		Init:      func() any { return float64(0) },
		Step: func(state, input, output any) (bool, any) {
			st := state.(float64)
			in := input.(chaosInput)
			switch in.Kind {
			case chaosWrite:
				return true, in.Weight
			case chaosRead:
				return output.(chaosOutput).Weight == st, st
			}
			return false, st
		},
		DescribeOperation: func(input, output any) string {
			in := input.(chaosInput)
			if in.Kind == chaosWrite {
				s := fmt.Sprintf("put(%s, %v)", in.Key, in.Weight)
				if in.Weight == 0 {
					s = fmt.Sprintf("remove(%s)", in.Key)
				}
				if in.Unknown {
					s += " ?"
				}
				return s
			}
			return fmt.Sprintf("get(%s) → %v", in.Key, output.(chaosOutput).Weight)
		},
		DescribeState: func(state any) string { return fmt.Sprint(state.(float64)) },
	}
}

// partitionByRole splits a history into one per register: writes go to
// their register's history; each read is projected onto every register of
// its target (its output becomes that register's value, 0 if absent).
func partitionByRole(history []porcupine.Operation) [][]porcupine.Operation {
	keys := map[string]chaosTarget{}
	for _, op := range history {
		in := op.Input.(chaosInput)
		if in.Kind == chaosWrite {
			keys[in.Key] = in.Target
			continue
		}
		for k := range op.Output.(chaosOutput).Values {
			keys[k] = in.Target
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	idx := make(map[string]int, len(names))
	for i, k := range names {
		idx[k] = i
	}
	parts := make([][]porcupine.Operation, len(names))
	for _, op := range history {
		in := op.Input.(chaosInput)
		if in.Kind == chaosWrite {
			parts[idx[in.Key]] = append(parts[idx[in.Key]], op)
			continue
		}
		vs := op.Output.(chaosOutput).Values
		for i, k := range names {
			if keys[k] != in.Target {
				continue
			}
			p := op
			p.Input = chaosInput{Kind: chaosRead, Target: in.Target, Key: k}
			p.Output = chaosOutput{Weight: vs[k]}
			parts[i] = append(parts[i], p)
		}
	}
	return parts
}

// porcupineHistory turns the register part of a recorded history into
// porcupine operations: failed operations are left out (they had no effect);
// ledger roles are left out of writes and reads (checkLedger checks them).
//
// An unknown write whose value no read saw is left out too: it can always be
// linearized after every other operation, where it changes nothing. An
// unknown write whose value a read saw must be linearized before that read
// returned, so its return is the earliest such read's return; any other
// unknown write never returns (chaosInfinity). Both keep the check exact while
// sparing porcupine a search over operations that cannot matter.
//
// A quota removal writes 0, which no read can tell from another removal's:
// an unknown one is left out when no read of its role that saw no quota
// returned after it was invoked (none can be explained by it), and otherwise
// never returns.
func porcupineHistory(ops []chaosOp) []porcupine.Operation {
	return porcupineHistoryOf(ops, true)
}

// checkChaosHistory checks ops for linearizability against chaosModel in
// at most two passes of timeout each, and returns the verdict and the
// porcupine history of the pass that gave it. The first pass leaves out
// every unknown quota removal (as if each took effect after all else, where
// it changes nothing): a linearization found so is one of the whole
// history. Only if it finds none does the second pass keep the removals
// some read of no quota may need, each never returning, which can make
// porcupine's search grow with 2 to the power of their number.
//
// The passes compute no linearization info: porcupine's partial
// linearizations take memory growing with the square of a register's
// operations (gigabytes for a few minutes of clients), so a caller that
// wants the visualisation asks for it on the returned history.
func checkChaosHistory(ops []chaosOp, timeout time.Duration) (porcupine.CheckResult, []porcupine.Operation) {
	h := porcupineHistoryOf(ops, false)
	res := checkRegisters(h, timeout)
	if res != porcupine.Illegal {
		return res, h
	}
	full := porcupineHistoryOf(ops, true)
	if len(full) == len(h) {
		return res, h
	}
	return checkRegisters(full, timeout), full
}

// checkRegisters checks h against chaosModel one register after another
// (partitionByRole), within timeout in all. Porcupine would check them all
// at once, each search caching a bitset over its register's operations per
// state it reaches: memory growing with the square of the operations, for
// every register at the same time.
func checkRegisters(h []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	model := chaosModel()
	model.Partition = nil // each history checked is one register's
	deadline := time.Now().Add(timeout)
	res := porcupine.Ok
	for _, part := range partitionByRole(h) {
		left := time.Until(deadline)
		if left <= 0 {
			return porcupine.Unknown // porcupine takes 0 as no timeout
		}
		switch porcupine.CheckOperationsTimeout(model, part, left) {
		case porcupine.Illegal:
			return porcupine.Illegal
		case porcupine.Unknown:
			res = porcupine.Unknown
		}
	}
	return res
}

// porcupineHistoryOf is porcupineHistory, leaving every unknown quota
// removal out unless removals is set.
func porcupineHistoryOf(ops []chaosOp, removals bool) []porcupine.Operation {
	seen := map[float64]int64{}    // value → earliest return of a read that saw it
	lastZero := map[string]int64{} // register → latest return of a read that saw it 0
	readsOf := map[chaosTarget][]chaosOp{}
	for _, op := range ops {
		if op.Kind != chaosRead || op.Outcome != chaosOK {
			continue
		}
		for _, w := range op.Weights {
			if t, ok := seen[w]; !ok || op.Return < t {
				seen[w] = op.Return
			}
		}
		readsOf[op.Target] = append(readsOf[op.Target], op)
	}
	for _, op := range ops {
		if op.Kind == chaosWrite && op.Weight == 0 && op.Outcome == chaosUnknown {
			k := registerKey(op.Target, op.Role)
			if _, done := lastZero[k]; done {
				continue
			}
			lastZero[k] = -1
			for _, rd := range readsOf[op.Target] {
				if rd.Weights[op.Role] == 0 {
					lastZero[k] = max(lastZero[k], rd.Return)
				}
			}
		}
	}
	var out []porcupine.Operation
	for _, op := range ops {
		if op.Outcome == chaosFailed || op.ledgerWrite() {
			continue
		}
		switch op.Kind {
		case chaosWrite:
			in := chaosInput{Kind: chaosWrite, Target: op.Target, Key: registerKey(op.Target, op.Role), Weight: op.Weight}
			ret := op.Return
			if op.Outcome == chaosUnknown {
				in.Unknown = true
				if op.Weight == 0 {
					if !removals || lastZero[in.Key] < op.Call {
						continue
					}
					ret = chaosInfinity
				} else {
					t, ok := seen[op.Weight]
					if !ok {
						continue
					}
					ret = max(t, op.Call)
				}
			}
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: chaosOutput{}, Return: ret})
		case chaosRead:
			if op.Outcome != chaosOK {
				continue
			}
			vs := map[string]float64{}
			for r, w := range op.Weights {
				if op.Target != targetWeights || !isLedgerRole(r) {
					vs[registerKey(op.Target, r)] = w
				}
			}
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: chaosInput{Kind: chaosRead, Target: op.Target}, Call: op.Call, Output: chaosOutput{Values: vs}, Return: op.Return})
		}
	}
	return out
}

// checkLedger checks the write-once ledger roles: no read saw a ledger
// weight that no write wrote, or before its write was invoked; once a read
// saw a ledger role, or its write was acknowledged, every read invoked later
// sees it with its weight. It returns one line per violation, at most limit.
func checkLedger(ops []chaosOp, limit int) []string {
	type ledger struct {
		write     chaosOp
		firstSeen int64 // earliest return of a read that saw it; chaosInfinity if none
	}
	ls := map[string]*ledger{}
	writes := map[int]chaosOp{} // every ledger write, failed ones too, by LedgerIndex
	for _, op := range ops {
		if op.ledgerWrite() {
			writes[op.LedgerIndex] = op
			if op.Outcome != chaosFailed {
				ls[op.Role] = &ledger{write: op, firstSeen: chaosInfinity}
			}
		}
	}
	var bad []string
	report := func(format string, args ...any) {
		if len(bad) < limit {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	var reads []chaosOp
	for _, op := range ops {
		if op.Kind != chaosRead || op.Outcome != chaosOK || op.Target != targetWeights {
			continue
		}
		reads = append(reads, op)
		for r, w := range op.ledgerSeen(writes) {
			l, ok := ls[r]
			switch {
			case !ok:
				report("read by client %d at %s saw %s=%v, which no write wrote", op.Client, fmtNanos(op.Call), r, w)
			case w != l.write.Weight:
				report("read by client %d at %s saw %s=%v, but the only write of %s wrote %v", op.Client, fmtNanos(op.Call), r, w, r, l.write.Weight)
			case op.Return < l.write.Call:
				report("read by client %d returned at %s with %s, before its write was invoked at %s", op.Client, fmtNanos(op.Return), r, fmtNanos(l.write.Call))
			default:
				l.firstSeen = min(l.firstSeen, op.Return)
			}
		}
	}
	roles := make([]string, 0, len(ls))
	for r := range ls {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, r := range roles {
		l := ls[r]
		visible := l.firstSeen
		if l.write.Outcome == chaosOK {
			visible = min(visible, l.write.Return)
		}
		for _, rd := range reads {
			if rd.Call > visible {
				if !rd.sawLedger(l.write) {
					why := "was acknowledged"
					if l.firstSeen == visible {
						why = "was seen by an earlier read"
					}
					report("read by client %d at %s lost %s=%v (its write, client %d %s–%s, %s before)", rd.Client, fmtNanos(rd.Call), r, l.write.Weight, l.write.Client, fmtNanos(l.write.Call), fmtNanos(l.write.Return), why)
					break
				}
			}
		}
	}
	return bad
}

// fmtNanos formats a history time as seconds since the run started.
func fmtNanos(ns int64) string {
	if ns == chaosInfinity {
		return "∞"
	}
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}

func TestChaosModel(t *testing.T) {
	t.Parallel()
	w := func(client int, role string, weight float64, call, ret int64, o chaosOutcome) chaosOp {
		return chaosOp{Client: client, Kind: chaosWrite, Role: role, Weight: weight, Call: call, Return: ret, Outcome: o}
	}
	r := func(client int, call, ret int64, ws map[string]float64) chaosOp {
		return chaosOp{Client: client, Kind: chaosRead, Call: call, Return: ret, Outcome: chaosOK, Weights: ws}
	}
	tests := []struct {
		name   string
		ops    []chaosOp
		linear bool
	}{
		{"empty", nil, true},
		{"read of nothing", []chaosOp{r(0, 0, 1, nil)}, true},
		{"write then read", []chaosOp{w(0, "r0", 1, 0, 10, chaosOK), r(1, 20, 30, map[string]float64{"r0": 1})}, true},
		{"stale read after acknowledged write", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(0, "r0", 2, 20, 30, chaosOK),
			r(1, 40, 50, map[string]float64{"r0": 1}),
		}, false},
		{"lost acknowledged write", []chaosOp{w(0, "r0", 1, 0, 10, chaosOK), r(1, 20, 30, nil)}, false},
		{"concurrent read may see either", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(0, "r0", 2, 20, 40, chaosOK),
			r(1, 25, 30, map[string]float64{"r0": 1}),
			r(2, 26, 35, map[string]float64{"r0": 2}),
		}, true},
		{"reads go back in time", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(0, "r0", 2, 20, 100, chaosOK),
			r(1, 25, 30, map[string]float64{"r0": 2}),
			r(2, 40, 50, map[string]float64{"r0": 1}),
		}, false},
		{"unknown write seen later", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosUnknown),
			r(1, 50, 60, map[string]float64{"r0": 1}),
		}, true},
		{"unknown write never seen", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(0, "r0", 2, 20, 30, chaosUnknown),
			r(1, 50, 60, map[string]float64{"r0": 1}),
		}, true},
		{"unknown write seen then undone", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(0, "r0", 2, 20, 30, chaosUnknown),
			r(1, 50, 60, map[string]float64{"r0": 2}),
			r(1, 70, 80, map[string]float64{"r0": 1}),
		}, false},
		{"failed write seen", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosFailed),
			r(1, 50, 60, map[string]float64{"r0": 1}),
		}, false},
		{"value no write wrote", []chaosOp{r(1, 50, 60, map[string]float64{"r3": 7})}, false},
		{"roles are independent", []chaosOp{
			w(0, "r0", 1, 0, 10, chaosOK),
			w(1, "r1", 2, 0, 10, chaosOK),
			r(2, 20, 30, map[string]float64{"r0": 1, "r1": 2}),
			w(0, "r0", 3, 40, 50, chaosOK),
			r(2, 60, 70, map[string]float64{"r0": 3, "r1": 2}),
		}, true},
		{"ledger roles are left to checkLedger", []chaosOp{
			w(0, "l9", 9, 0, 10, chaosOK),
			r(2, 20, 30, nil),
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := porcupineHistory(tc.ops)
			res, _ := porcupine.CheckOperationsVerbose(chaosModel(), h, 10*time.Second)
			want := porcupine.Illegal
			if tc.linear {
				want = porcupine.Ok
			}
			if res != want {
				t.Errorf("history %+v: got %s, want %s", tc.ops, res, want)
			}
		})
	}
}

func TestChaosLedger(t *testing.T) {
	t.Parallel()
	w := func(role string, weight float64, call, ret int64, o chaosOutcome) chaosOp {
		return chaosOp{Client: 0, Kind: chaosWrite, Role: role, Weight: weight, Call: call, Return: ret, Outcome: o}
	}
	r := func(call, ret int64, ws map[string]float64) chaosOp {
		return chaosOp{Client: 1, Kind: chaosRead, Call: call, Return: ret, Outcome: chaosOK, Weights: ws}
	}
	tests := []struct {
		name string
		ops  []chaosOp
		bad  int
	}{
		{"acknowledged and present", []chaosOp{w("l1", 1, 0, 10, chaosOK), r(20, 30, map[string]float64{"l1": 1})}, 0},
		{"concurrent read may miss it", []chaosOp{w("l1", 1, 0, 10, chaosOK), r(5, 30, nil)}, 0},
		{"acknowledged then lost", []chaosOp{w("l1", 1, 0, 10, chaosOK), r(20, 30, nil)}, 1},
		{"unknown never seen", []chaosOp{w("l1", 1, 0, 10, chaosUnknown), r(20, 30, nil)}, 0},
		{"unknown seen then lost", []chaosOp{
			w("l1", 1, 0, 10, chaosUnknown),
			r(20, 30, map[string]float64{"l1": 1}),
			r(40, 50, nil),
		}, 1},
		{"seen before invoked", []chaosOp{w("l1", 1, 40, 50, chaosOK), r(20, 30, map[string]float64{"l1": 1})}, 1},
		{"wrong value", []chaosOp{w("l1", 1, 0, 10, chaosOK), r(20, 30, map[string]float64{"l1": 2})}, 1},
		{"never written", []chaosOp{r(20, 30, map[string]float64{"l1": 2})}, 1},
		{"never written, with its own weight", []chaosOp{w("l1", 1, 0, 10, chaosOK), r(20, 30, map[string]float64{"l1": 1, "l2": 2})}, 1},
		{"many acknowledged, one lost", []chaosOp{
			w("l1", 1, 0, 10, chaosOK), w("l2", 2, 0, 10, chaosOK), w("l3", 3, 0, 10, chaosOK),
			r(20, 30, map[string]float64{"l1": 1, "l2": 2, "l3": 3}),
			r(40, 50, map[string]float64{"l1": 1, "l3": 3}),
		}, 1},
		{"failed write seen", []chaosOp{w("l1", 1, 0, 10, chaosFailed), r(20, 30, map[string]float64{"l1": 1})}, 1},
		{"register roles ignored", []chaosOp{w("r1", 1, 0, 10, chaosOK), r(20, 30, nil)}, 0},
	}
	for _, tc := range tests {
		for _, compact := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compact=%v", tc.name, compact), func(t *testing.T) {
				t.Parallel()
				ops := tc.ops
				if compact {
					var err error
					if ops, err = compactLedgerOps(tc.ops); err != nil {
						t.Fatal(err)
					}
				}
				got := checkLedger(ops, 10)
				if len(got) != tc.bad {
					t.Errorf("history %+v: got %d violations %q, want %d", ops, len(got), got, tc.bad)
				}
			})
		}
	}
}

// compactLedgerOps returns ops as a run records them: each ledger write
// gets the next dense index, and each weights read's ledger roles move from
// Weights to Ledger and LedgerStray (splitLedger).
func compactLedgerOps(ops []chaosOp) ([]chaosOp, error) {
	idx := map[int64]int{}
	out := make([]chaosOp, 0, len(ops))
	for _, op := range ops {
		if op.ledgerWrite() {
			op.LedgerIndex = len(idx)
			idx[int64(op.Weight)] = op.LedgerIndex
		}
		out = append(out, op)
	}
	index := func(seq int64) (int, bool) {
		i, ok := idx[seq]
		return i, ok
	}
	for i, op := range out {
		if op.Kind != chaosRead || op.Target != targetWeights || op.Weights == nil {
			continue
		}
		var infos []roleWeight
		for r, w := range op.Weights {
			infos = append(infos, roleWeight{Role: r, Weight: w})
		}
		ws, ledger, stray, err := splitLedger(infos, index, len(idx))
		if err != nil {
			return nil, err
		}
		out[i].Weights, out[i].Ledger, out[i].LedgerStray = ws, ledger, stray
	}
	return out, nil
}

func TestChaosSplitLedger(t *testing.T) {
	t.Parallel()
	issued := map[int64]int{12: 0, 5: 1, 70: 69} // seq → dense index
	index := func(seq int64) (int, bool) {
		i, ok := issued[seq]
		return i, ok
	}
	rw := func(role string, w float64) roleWeight { return roleWeight{Role: role, Weight: w} }
	infos := []roleWeight{rw("l5", 5), rw("l12", 12), rw("l70", 70), rw("l6", 7), rw("r1", 1), rw("lx", 3), rw("l07", 7), rw("l8", 8.5), rw("l11", 11), rw("l9", 9)}
	ws, ledger, stray, err := splitLedger(infos, index, 70)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"l6": 7, "r1": 1, "lx": 3, "l07": 7, "l8": 8.5}, ws); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{0b11, 1 << 5}, ledger); diff != "" {
		t.Errorf("ledger bitset (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{9, 11}, stray); diff != "" {
		t.Errorf("stray (-want +got):\n%s", diff)
	}
	op := chaosOp{Kind: chaosRead, Weights: ws, Ledger: ledger, LedgerStray: stray}
	lw := func(role string, idx int) chaosOp {
		return chaosOp{Kind: chaosWrite, Role: role, LedgerIndex: idx}
	}
	for _, tc := range []struct {
		write chaosOp
		want  bool
	}{
		{lw("l12", 0), true}, {lw("l5", 1), true}, {lw("l70", 69), true}, {lw("l6", 2), true}, {lw("l07", 3), true},
		{lw("l9", 4), true}, {lw("l7", 5), false}, {lw("l13", 64), false}, {lw("l1", 70), false}, {lw("lz", 200), false},
	} {
		if got := op.sawLedger(tc.write); got != tc.want {
			t.Errorf("sawLedger(%s, index %d): got %v, want %v", tc.write.Role, tc.write.LedgerIndex, got, tc.want)
		}
	}
	writes := map[int]chaosOp{0: {Role: "l12", Weight: 12}, 1: {Role: "l5", Weight: 5}}
	seen := map[string]float64{}
	for r, w := range op.ledgerSeen(writes) {
		seen[r] = w
	}
	want := map[string]float64{"l12": 12, "l5": 5, "l#69": 0, "l9": 9, "l11": 11, "l6": 7, "lx": 3, "l07": 7, "l8": 8.5}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("ledgerSeen (-want +got):\n%s", diff)
	}
	for _, dup := range [][]roleWeight{
		{rw("l5", 5), rw("l5", 5)},
		{rw("l9", 9), rw("l9", 9)},
		{rw("r1", 1), rw("r1", 2)},
	} {
		if _, _, _, err := splitLedger(dup, index, 70); err == nil {
			t.Errorf("splitLedger(%v): got no error, want a role listed twice", dup)
		}
	}
}

func TestChaosLedgerBudget(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		issued, budget int
		elapsed, span  time.Duration
		want           bool
	}{
		{0, 1500, 0, 60 * s, false},
		{0, 1500, time.Nanosecond, 60 * s, true},
		{1, 1500, 40 * time.Millisecond, 60 * s, false},
		{1, 1500, 41 * time.Millisecond, 60 * s, true},
		{749, 1500, 30 * s, 60 * s, true},
		{750, 1500, 30 * s, 60 * s, false},
		{1499, 1500, 60 * s, 60 * s, true},
		{1500, 1500, 60 * s, 60 * s, false},
		{1500, 1500, 10 * time.Minute, 60 * s, false},
		{1499, 1500, 10 * time.Minute, 60 * s, true},
		{0, 3, 0, 0, true},
		{3, 3, 0, 0, false},
		{0, 0, 10 * s, 60 * s, false},
	}
	for _, tc := range tests {
		if got := ledgerAllowed(tc.issued, tc.budget, tc.elapsed, tc.span); got != tc.want {
			t.Errorf("ledgerAllowed(%d, %d, %v, %v): got %v, want %v", tc.issued, tc.budget, tc.elapsed, tc.span, got, tc.want)
		}
	}

	// A history issues at most the budget, with dense indexes, whatever
	// other writes take sequence numbers in between.
	h := newChaosHistory()
	var got []int
	for i := range 5 {
		h.nextWeight()
		seq, idx, ok := h.issueLedger(3, 0)
		if ok != (i < 3) {
			t.Fatalf("issue %d: got ok %v, want %v", i, ok, i < 3)
		}
		if ok {
			got = append(got, idx)
			if want := int64(2 * (i + 1)); seq != want {
				t.Errorf("issue %d: got seq %d, want %d", i, seq, want)
			}
		}
	}
	if diff := cmp.Diff([]int{0, 1, 2}, got); diff != "" {
		t.Errorf("dense indexes (-want +got):\n%s", diff)
	}
	if n := h.ledgerIssued(); n != 3 {
		t.Errorf("ledgerIssued: got %d, want 3", n)
	}
	// A budget of 1500 spread over an hour allows one write in the
	// test's first 2.4 s, not two; no budget allows any number.
	hour := newChaosHistory()
	if _, _, ok := hour.issueLedger(1500, time.Hour); !ok {
		t.Errorf("issueLedger(1500, 1h) at the start: got refused, want ok")
	}
	if _, _, ok := hour.issueLedger(1500, time.Hour); ok {
		t.Errorf("second issueLedger(1500, 1h) at the start: got ok, want refused")
	}
	if _, _, ok := h.issueLedger(0, time.Hour); !ok {
		t.Errorf("issueLedger(0, 1h): got refused, want ok (no limit)")
	}
}

// TestChaosLedgerReadSize checks that a weights read that saw a full
// budget of ledger roles retains about budget/8 bytes: a read listing
// every ledger role by name or number made long runs' memory grow with the
// square of their length. Not parallel: it measures the heap.
func TestChaosLedgerReadSize(t *testing.T) {
	h := newChaosHistory()
	// The body is built in a function of its own, so that its garbage
	// is gone before the first measure.
	body := func() []byte {
		var infos []roleWeight
		for range defaultLedgerBudget {
			seq, _, ok := h.issueLedger(0, 0)
			if !ok {
				t.Fatal("issueLedger with no limit refused")
			}
			infos = append(infos, roleWeight{Role: ledgerRole(seq), Weight: float64(seq)})
		}
		b, err := json.Marshal(infos)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	const reads = 1000
	ops := make([]chaosOp, reads)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ops {
		if err := h.decodeWeights(body, &ops[i]); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perRead := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / reads
	// The bitset (budget/8 bytes, rounded to a word and a size class)
	// and an empty Weights map.
	const limit = defaultLedgerBudget/8 + 128
	if perRead > limit {
		t.Errorf("a read of %d ledger roles retains %d bytes, want at most %d", defaultLedgerBudget, perRead, limit)
	}
	t.Logf("a read of %d ledger roles retains %d bytes", defaultLedgerBudget, perRead)
	for i := range ops {
		if n := popcount(ops[i].Ledger); n != defaultLedgerBudget || len(ops[i].Weights) != 0 || ops[i].LedgerStray != nil {
			t.Fatalf("read %d: got %d ledger roles, weights %v, stray %v; want %d, none, none", i, n, ops[i].Weights, ops[i].LedgerStray, defaultLedgerBudget)
		}
	}
	runtime.KeepAlive(ops)
	runtime.KeepAlive(body)
}

// popcount counts the bits set in a bitset.
func popcount(set []uint64) int {
	n := 0
	for _, w := range set {
		n += bits.OnesCount64(w)
	}
	return n
}
