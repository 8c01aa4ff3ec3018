package replog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regent-ha/regent/replog/paxos"
)

func testMembership() *paxos.Membership {
	return &paxos.Membership{
		Cluster: 0xfeedface,
		Members: []paxos.Member{
			{ID: 1, Addr: "10.0.0.1:5051", Voter: true},
			{ID: 1 << 60, Addr: "10.0.0.2:5051", Voter: true},
			{ID: 7, Addr: "[::1]:5051"},
		},
	}
}

func testActions() []paxos.Action {
	return []paxos.Action{
		{},
		{Position: 1, Promised: paxos.Proposal{Round: 3, Replica: 9}},
		{
			Position:  1<<64 - 1,
			Promised:  paxos.Proposal{Round: 1<<64 - 1, Replica: 1<<64 - 1},
			Performed: paxos.Proposal{Round: 2, Replica: 5},
			Learned:   true,
			Entry:     paxos.Entry{Type: paxos.EntryAppend, Data: []byte("registry snapshot")},
		},
		{Position: 4, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte{}}},
		{Position: 5, Learned: true, Entry: paxos.Entry{Type: paxos.EntryNop, Tombstone: true}},
		{Position: 6, Learned: true, Entry: paxos.Entry{Type: paxos.EntryTruncate, To: 5}},
		{Position: 7, Learned: true, Entry: paxos.Entry{Type: paxos.EntryConfig, Config: testMembership()}},
		{Position: 8, Entry: paxos.Entry{Type: paxos.EntrySnapshot, Data: bytes.Repeat([]byte{0xab}, 5000)}},
	}
}

func testMessages() []paxos.Message {
	return []paxos.Message{
		{},
		{Type: paxos.MsgPromiseRequest, Cluster: 1, From: 2, To: 3, Proposal: paxos.Proposal{Round: 4, Replica: 2}, Implicit: true},
		{Type: paxos.MsgPromiseResponse, From: 3, To: 2, Result: paxos.ResultReject, Position: 10, Actions: testActions()[2:3]},
		{Type: paxos.MsgWriteRequest, Actions: testActions()},
		{Type: paxos.MsgRecoverResponse, Status: paxos.StatusVoting, Begin: 3, End: 1 << 40, Config: testMembership()},
		{Type: paxos.MsgRefused, Reason: "replica 7 at 10.0.0.9:5051 is not in masters; add it to master.masters on every master"},
		{Type: paxos.MsgRecoverResponse, Config: &paxos.Membership{}},
	}
}

func testHardStates() []paxos.HardState {
	return []paxos.HardState{
		{},
		{Replica: 1, Status: paxos.StatusEmpty},
		{
			Replica:    1 << 63,
			Cluster:    42,
			Status:     paxos.StatusVoting,
			Promised:   paxos.Proposal{Round: 17, Replica: 3},
			Membership: *testMembership(),
			ConfigAt:   7,
			Begin:      1000,
		},
		{
			Replica:   5,
			Cluster:   42,
			Status:    paxos.StatusVoting,
			Promised:  paxos.Proposal{Round: 2, Replica: 5},
			Begin:     1000,
			LearnedTo: 1 << 40,
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	opts := cmpopts.EquateEmpty()
	for i, m := range testMessages() {
		b := EncodeMessage(m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("message %d: DecodeMessage(%x): %v", i, b, err)
		}
		if diff := cmp.Diff(m, got, opts); diff != "" {
			t.Errorf("message %d: round trip (-want +got):\n%s", i, diff)
		}
		if len(b) != messageSize(&m) {
			t.Errorf("message %d: size %d, messageSize says %d", i, len(b), messageSize(&m))
		}
	}
	for i, a := range testActions() {
		b := EncodeAction(a)
		got, err := DecodeAction(b)
		if err != nil {
			t.Fatalf("action %d: DecodeAction(%x): %v", i, b, err)
		}
		// Data keeps nil versus empty exactly.
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("action %d: round trip (-want +got):\n%s", i, diff)
		}
		if len(b) != ActionSize(a) {
			t.Errorf("action %d: size %d, ActionSize says %d", i, len(b), ActionSize(a))
		}
	}
	for i, hs := range testHardStates() {
		b := EncodeHardState(hs)
		got, err := DecodeHardState(b)
		if err != nil {
			t.Fatalf("hard state %d: DecodeHardState(%x): %v", i, b, err)
		}
		if diff := cmp.Diff(hs, got, opts); diff != "" {
			t.Errorf("hard state %d: round trip (-want +got):\n%s", i, diff)
		}
	}
}

func TestCodecDecodedValuesDoNotAliasInput(t *testing.T) {
	t.Parallel()
	a := paxos.Action{Position: 1, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte("abc")}}
	b := EncodeAction(a)
	got, err := DecodeAction(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if string(got.Entry.Data) != "abc" {
		t.Errorf("decoded data changed with the input: %q", got.Entry.Data)
	}
}

func TestCodecRejects(t *testing.T) {
	t.Parallel()
	msg := EncodeMessage(testMessages()[3])
	act := EncodeAction(testActions()[6])
	hs := EncodeHardState(testHardStates()[2])

	// A message whose action count claims far more than the input holds.
	hugeCount := []byte{CodecVersion, byte(paxos.MsgWriteRequest), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	hugeCount = binary.AppendUvarint(hugeCount, 1<<40)
	// An action whose data length claims 1 GiB.
	hugeData := []byte{CodecVersion, 1, 0, 0, 0, 0, 0, entryFlagData, byte(paxos.EntryAppend)}
	hugeData = binary.AppendUvarint(hugeData, 1<<30)
	// A status that does not fit in a uint8.
	bigStatus := []byte{CodecVersion, 1, 0}
	bigStatus = binary.AppendUvarint(bigStatus, 256)

	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"empty message", decodeMessageErr, nil},
		{"message unknown version", decodeMessageErr, append([]byte{2}, msg[1:]...)},
		{"message trailing byte", decodeMessageErr, append(bytes.Clone(msg), 0)},
		{"message unknown flags", decodeMessageErr, withByte(EncodeMessage(paxos.Message{}), 7, 0x80)},
		{"message absurd action count", decodeMessageErr, hugeCount},
		{"empty action", decodeActionErr, nil},
		{"action unknown version", decodeActionErr, append([]byte{0}, act[1:]...)},
		{"action trailing byte", decodeActionErr, append(bytes.Clone(act), 1)},
		{"action absurd data length", decodeActionErr, hugeData},
		{"action bad bool", decodeActionErr, withByte(EncodeAction(paxos.Action{}), 6, 2)},
		{"action unknown entry flags", decodeActionErr, withByte(EncodeAction(paxos.Action{}), 7, 0x10)},
		{"action varint overflow", decodeActionErr, append([]byte{CodecVersion}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"empty hard state", decodeHardStateErr, nil},
		{"hard state unknown version", decodeHardStateErr, append([]byte{9}, hs[1:]...)},
		{"hard state trailing byte", decodeHardStateErr, append(bytes.Clone(hs), 0)},
		{"hard state status out of range", decodeHardStateErr, bigStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.decode(tt.in)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("decode(%x) = %v, want an error wrapping ErrCorrupt", tt.in, err)
			}
		})
	}
}

// TestCodecRejectsEveryTruncation cuts valid encodings at every length.
func TestCodecRejectsEveryTruncation(t *testing.T) {
	t.Parallel()
	for _, m := range testMessages() {
		b := EncodeMessage(m)
		for n := range len(b) {
			if err := decodeMessageErr(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeMessage(%x) (first %d of %d bytes) = %v, want ErrCorrupt", b[:n], n, len(b), err)
			}
		}
	}
	for _, a := range testActions() {
		b := EncodeAction(a)
		for n := range len(b) {
			if err := decodeActionErr(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeAction(%x) (first %d of %d bytes) = %v, want ErrCorrupt", b[:n], n, len(b), err)
			}
		}
	}
	for _, hs := range testHardStates() {
		b := EncodeHardState(hs)
		// The learned watermark is optional, last: the encoding without it
		// is a whole one (LearnedTo == 0), as an older store wrote it.
		old := len(b)
		if hs.LearnedTo != 0 {
			noWatermark := hs
			noWatermark.LearnedTo = 0
			old = len(EncodeHardState(noWatermark))
		}
		for n := range len(b) {
			if n == old {
				continue
			}
			if err := decodeHardStateErr(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeHardState(%x) (first %d of %d bytes) = %v, want ErrCorrupt", b[:n], n, len(b), err)
			}
		}
	}
}

func withByte(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func decodeMessageErr(b []byte) error   { _, err := DecodeMessage(b); return err }
func decodeActionErr(b []byte) error    { _, err := DecodeAction(b); return err }
func decodeHardStateErr(b []byte) error { _, err := DecodeHardState(b); return err }

// FuzzDecodeMessage checks that decoding never panics and that whatever
// decodes re-encodes to something that decodes to the same value.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range testMessages() {
		f.Add(EncodeMessage(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeMessage(%x) = %v, not wrapping ErrCorrupt", b, err)
			}
			return
		}
		b2 := EncodeMessage(m)
		m2, err := DecodeMessage(b2)
		if err != nil {
			t.Fatalf("re-decode of %x (from %x): %v", b2, b, err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("re-decode of %x differs (-first +second):\n%s", b, diff)
		}
		if len(b2) != messageSize(&m) {
			t.Fatalf("messageSize = %d, encoded %d bytes", messageSize(&m), len(b2))
		}
		owned := bytes.Clone(b)
		m3, err := DecodeMessageOwned(owned)
		if err != nil {
			t.Fatalf("DecodeMessageOwned(%x) = %v; DecodeMessage decoded it", b, err)
		}
		if diff := cmp.Diff(m, m3); diff != "" {
			t.Fatalf("DecodeMessageOwned(%x) differs from DecodeMessage (-copy +owned):\n%s", b, diff)
		}
	})
}

// FuzzDecodeAction is FuzzDecodeMessage for actions.
func FuzzDecodeAction(f *testing.F) {
	for _, a := range testActions() {
		f.Add(EncodeAction(a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAction(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeAction(%x) = %v, not wrapping ErrCorrupt", b, err)
			}
			return
		}
		b2 := EncodeAction(a)
		a2, err := DecodeAction(b2)
		if err != nil {
			t.Fatalf("re-decode of %x (from %x): %v", b2, b, err)
		}
		if diff := cmp.Diff(a, a2); diff != "" {
			t.Fatalf("re-decode of %x differs (-first +second):\n%s", b, diff)
		}
		if len(b2) != ActionSize(a) {
			t.Fatalf("ActionSize = %d, encoded %d bytes", ActionSize(a), len(b2))
		}
	})
}

// FuzzDecodeHardState is FuzzDecodeMessage for hard states.
func FuzzDecodeHardState(f *testing.F) {
	for _, hs := range testHardStates() {
		f.Add(EncodeHardState(hs))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := DecodeHardState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeHardState(%x) = %v, not wrapping ErrCorrupt", b, err)
			}
			return
		}
		hs2, err := DecodeHardState(EncodeHardState(hs))
		if err != nil {
			t.Fatalf("re-decode (from %x): %v", b, err)
		}
		if diff := cmp.Diff(hs, hs2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-decode of %x differs (-first +second):\n%s", b, diff)
		}
	})
}

// benchMessage is a write request carrying 64 appends of 256 bytes.
func benchMessage() paxos.Message {
	m := paxos.Message{Type: paxos.MsgWriteRequest, Cluster: 7, From: 1, To: 2, Proposal: paxos.Proposal{Round: 9, Replica: 1}}
	for i := range 64 {
		m.Actions = append(m.Actions, paxos.Action{
			Position:  paxos.Position(1000 + i),
			Promised:  m.Proposal,
			Performed: m.Proposal,
			Entry:     paxos.Entry{Type: paxos.EntryAppend, Data: bytes.Repeat([]byte{byte(i)}, 256)},
		})
	}
	return m
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := benchMessage()
	buf := EncodeMessage(m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], m)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	buf := EncodeMessage(benchMessage())
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeHardStateLearnedTo: a hard state written before the learned
// watermark existed decodes with LearnedTo == 0; a written watermark is read
// back; an explicit zero (never written) is corrupt.
func TestDecodeHardStateLearnedTo(t *testing.T) {
	t.Parallel()
	// Version 1, replica 1, cluster 0, status EMPTY, promised 0.0,
	// membership (cluster 0, no members), config_at 0, begin 3: the layout
	// before learned_to.
	old := []byte{1, 1, 0, 1, 0, 0, 0, 0, 0, 3}
	tests := []struct {
		name    string
		in      []byte
		want    paxos.HardState
		corrupt bool
	}{
		{name: "without the field", in: old, want: paxos.HardState{Replica: 1, Status: paxos.StatusEmpty, Begin: 3}},
		{name: "with the field", in: append(bytes.Clone(old), 9), want: paxos.HardState{Replica: 1, Status: paxos.StatusEmpty, Begin: 3, LearnedTo: 9}},
		{name: "explicit zero", in: append(bytes.Clone(old), 0), corrupt: true},
		{name: "trailing byte after it", in: append(bytes.Clone(old), 9, 0), corrupt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeHardState(tt.in)
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeHardState(%x) = %+v, %v; want ErrCorrupt", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeHardState(%x): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("DecodeHardState(%x) (-want +got):\n%s", tt.in, diff)
			}
			if tt.want.LearnedTo == 0 && !bytes.Equal(EncodeHardState(got), tt.in) {
				t.Errorf("EncodeHardState(%+v) = %x, want the old layout %x", got, EncodeHardState(got), tt.in)
			}
		})
	}
}
