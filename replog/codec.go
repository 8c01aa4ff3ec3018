package replog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/regent-ha/regent/replog/paxos"
)

// The wire and disk codec for [paxos.Message], [paxos.Action] and
// [paxos.HardState].
//
// Every encoding starts with one version byte ([CodecVersion]); the rest is a
// fixed sequence of unsigned varints (encoding/binary), flag bytes and
// length-prefixed byte strings, field by field in declaration order. Decoding
// is strict: it rejects an unknown version, unknown flag bits, enum values that
// do not fit their type, lengths and counts beyond what the input can hold or
// beyond the limits below, and trailing bytes. It never panics, and decoded
// values never alias the input: the Entry.Data slices of one decoded message
// share one copy of it (so keeping one of them keeps that copy alive).
//
// Layout (version 1), uv = uvarint:
//
//	proposal   = uv round, uv replica
//	membership = uv cluster, uv count, count × (uv id, bytes addr, byte voter)
//	entry      = byte flags (1 data, 2 tombstone, 4 config), uv type,
//	             [bytes data], uv to, [membership]
//	action     = uv position, proposal promised, proposal performed,
//	             byte learned, entry
//	hardstate  = version, uv replica, uv cluster, uv status, proposal promised,
//	             membership, uv config_at, uv begin, [uv learned_to]
//	message    = version, uv type, uv cluster, uv from, uv to, proposal,
//	             byte flags (1 implicit, 2 config), uv position, uv begin,
//	             uv end, uv result, uv status, uv count, count × action,
//	             [membership], bytes reason
//	bytes      = uv length, length × byte

// CodecVersion is the first byte of every encoding this package writes.
const CodecVersion byte = 1

// Decoding limits. They reject absurd lengths before anything is allocated.
const (
	// MaxDataBytes bounds one Entry.Data.
	MaxDataBytes = 256 << 20
	// MaxStringBytes bounds an address or a refusal reason.
	MaxStringBytes = 64 << 10
	// MaxMembers bounds the members of one membership.
	MaxMembers = 1024
)

const (
	entryFlagData      = 1 << 0
	entryFlagTombstone = 1 << 1
	entryFlagConfig    = 1 << 2
	entryFlagsKnown    = entryFlagData | entryFlagTombstone | entryFlagConfig

	msgFlagImplicit = 1 << 0
	msgFlagConfig   = 1 << 1
	msgFlagsKnown   = msgFlagImplicit | msgFlagConfig
)

// minActionBytes is the smallest encoded action: position, two proposals of
// two varints, learned, entry flags, type and to, one byte each.
const minActionBytes = 1 + 2 + 2 + 1 + 1 + 1 + 1

// EncodeMessage returns the encoding of m.
func EncodeMessage(m paxos.Message) []byte {
	return AppendMessage(make([]byte, 0, messageSize(&m)), m)
}

// AppendMessage appends the encoding of m to dst and returns the extended
// slice.
func AppendMessage(dst []byte, m paxos.Message) []byte {
	dst = append(dst, CodecVersion)
	dst = binary.AppendUvarint(dst, uint64(m.Type))
	dst = binary.AppendUvarint(dst, uint64(m.Cluster))
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = appendProposal(dst, m.Proposal)
	var flags byte
	if m.Implicit {
		flags |= msgFlagImplicit
	}
	if m.Config != nil {
		flags |= msgFlagConfig
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(m.Position))
	dst = binary.AppendUvarint(dst, uint64(m.Begin))
	dst = binary.AppendUvarint(dst, uint64(m.End))
	dst = binary.AppendUvarint(dst, uint64(m.Result))
	dst = binary.AppendUvarint(dst, uint64(m.Status))
	dst = binary.AppendUvarint(dst, uint64(len(m.Actions)))
	for i := range m.Actions {
		dst = appendAction(dst, &m.Actions[i])
	}
	if m.Config != nil {
		dst = appendMembership(dst, m.Config)
	}
	return appendString(dst, m.Reason)
}

// DecodeMessage decodes an encoding made by [EncodeMessage]. Errors wrap
// [ErrCorrupt].
func DecodeMessage(b []byte) (paxos.Message, error) {
	// One copy of the input backs every Entry.Data of the message, instead of
	// one allocation per action.
	return decodeMessage(bytes.Clone(b))
}

// DecodeMessageOwned is [DecodeMessage] for a buffer the caller hands over:
// the message's entries and membership alias b instead of a copy of it, so
// b must not be modified or reused afterwards. The peer transport decodes
// the buffers gRPC unmarshals each frame into, which nothing else holds.
func DecodeMessageOwned(b []byte) (paxos.Message, error) {
	return decodeMessage(b)
}

func decodeMessage(buf []byte) (paxos.Message, error) {
	d := decoder{buf: buf}
	d.version()
	var m paxos.Message
	m.Type = paxos.MessageType(d.uint8("type"))
	m.Cluster = paxos.ClusterID(d.uvarint("cluster"))
	m.From = paxos.ReplicaID(d.uvarint("from"))
	m.To = paxos.ReplicaID(d.uvarint("to"))
	m.Proposal = d.proposal()
	flags := d.byte("flags")
	if flags&^msgFlagsKnown != 0 {
		d.fail("unknown message flags %#x", flags)
	}
	m.Implicit = flags&msgFlagImplicit != 0
	m.Position = paxos.Position(d.uvarint("position"))
	m.Begin = paxos.Position(d.uvarint("begin"))
	m.End = paxos.Position(d.uvarint("end"))
	m.Result = paxos.Result(d.uint8("result"))
	m.Status = paxos.Status(d.uint8("status"))
	n := d.count("actions", minActionBytes, math.MaxInt32)
	if n > 0 && d.err == nil {
		m.Actions = make([]paxos.Action, n)
		for i := range m.Actions {
			d.action(&m.Actions[i])
			if d.err != nil {
				break
			}
		}
	}
	if flags&msgFlagConfig != 0 {
		m.Config = d.membership()
	}
	m.Reason = d.string("reason")
	if err := d.finish("message"); err != nil {
		return paxos.Message{}, err
	}
	return m, nil
}

// EncodeAction returns the encoding of a.
func EncodeAction(a paxos.Action) []byte {
	return AppendAction(make([]byte, 0, 1+actionSize(&a)), a)
}

// AppendAction appends the encoding of a to dst and returns the extended
// slice.
func AppendAction(dst []byte, a paxos.Action) []byte {
	dst = append(dst, CodecVersion)
	return appendAction(dst, &a)
}

// ActionSize returns len(EncodeAction(a)) without encoding. Stores measure the
// maxBytes of [paxos.Storage.Actions] with it.
func ActionSize(a paxos.Action) int { return 1 + actionSize(&a) }

// DecodeAction decodes an encoding made by [EncodeAction]. Errors wrap
// [ErrCorrupt].
func DecodeAction(b []byte) (paxos.Action, error) {
	d := decoder{buf: bytes.Clone(b)}
	d.version()
	var a paxos.Action
	d.action(&a)
	if err := d.finish("action"); err != nil {
		return paxos.Action{}, err
	}
	return a, nil
}

// EncodeHardState returns the encoding of hs.
func EncodeHardState(hs paxos.HardState) []byte {
	return AppendHardState(make([]byte, 0, 64), hs)
}

// AppendHardState appends the encoding of hs to dst and returns the extended
// slice.
func AppendHardState(dst []byte, hs paxos.HardState) []byte {
	dst = append(dst, CodecVersion)
	dst = binary.AppendUvarint(dst, uint64(hs.Replica))
	dst = binary.AppendUvarint(dst, uint64(hs.Cluster))
	dst = binary.AppendUvarint(dst, uint64(hs.Status))
	dst = appendProposal(dst, hs.Promised)
	dst = appendMembership(dst, &hs.Membership)
	dst = binary.AppendUvarint(dst, uint64(hs.ConfigAt))
	dst = binary.AppendUvarint(dst, uint64(hs.Begin))
	if hs.LearnedTo != 0 {
		// Optional, last: an encoding without it (an older store's, or
		// a zero watermark) decodes to LearnedTo == 0.
		dst = binary.AppendUvarint(dst, uint64(hs.LearnedTo))
	}
	return dst
}

// DecodeHardState decodes an encoding made by [EncodeHardState]. Errors wrap
// [ErrCorrupt].
func DecodeHardState(b []byte) (paxos.HardState, error) {
	d := decoder{buf: b}
	d.version()
	var hs paxos.HardState
	hs.Replica = paxos.ReplicaID(d.uvarint("replica"))
	hs.Cluster = paxos.ClusterID(d.uvarint("cluster"))
	hs.Status = paxos.Status(d.uint8("status"))
	hs.Promised = d.proposal()
	if ms := d.membership(); ms != nil {
		hs.Membership = *ms
	}
	hs.ConfigAt = paxos.Position(d.uvarint("config_at"))
	hs.Begin = paxos.Position(d.uvarint("begin"))
	if d.err == nil && len(d.buf) > 0 {
		hs.LearnedTo = paxos.Position(d.uvarint("learned_to"))
		if d.err == nil && hs.LearnedTo == 0 {
			d.fail("learned_to: zero is never written")
		}
	}
	if err := d.finish("hard state"); err != nil {
		return paxos.HardState{}, err
	}
	return hs, nil
}

func appendProposal(dst []byte, p paxos.Proposal) []byte {
	dst = binary.AppendUvarint(dst, p.Round)
	return binary.AppendUvarint(dst, uint64(p.Replica))
}

func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendMembership(dst []byte, ms *paxos.Membership) []byte {
	dst = binary.AppendUvarint(dst, uint64(ms.Cluster))
	dst = binary.AppendUvarint(dst, uint64(len(ms.Members)))
	for _, m := range ms.Members {
		dst = binary.AppendUvarint(dst, uint64(m.ID))
		dst = appendString(dst, m.Addr)
		dst = appendBool(dst, m.Voter)
	}
	return dst
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendAction(dst []byte, a *paxos.Action) []byte {
	dst = binary.AppendUvarint(dst, uint64(a.Position))
	dst = appendProposal(dst, a.Promised)
	dst = appendProposal(dst, a.Performed)
	dst = appendBool(dst, a.Learned)
	e := &a.Entry
	var flags byte
	if e.Data != nil {
		flags |= entryFlagData
	}
	if e.Tombstone {
		flags |= entryFlagTombstone
	}
	if e.Config != nil {
		flags |= entryFlagConfig
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(e.Type))
	if e.Data != nil {
		dst = appendString(dst, e.Data)
	}
	dst = binary.AppendUvarint(dst, uint64(e.To))
	if e.Config != nil {
		dst = appendMembership(dst, e.Config)
	}
	return dst
}

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func proposalSize(p paxos.Proposal) int {
	return uvarintSize(p.Round) + uvarintSize(uint64(p.Replica))
}

func stringSize(n int) int { return uvarintSize(uint64(n)) + n }

func membershipSize(ms *paxos.Membership) int {
	n := uvarintSize(uint64(ms.Cluster)) + uvarintSize(uint64(len(ms.Members)))
	for _, m := range ms.Members {
		n += uvarintSize(uint64(m.ID)) + stringSize(len(m.Addr)) + 1
	}
	return n
}

// actionSize is the size of appendAction's output.
func actionSize(a *paxos.Action) int {
	n := uvarintSize(uint64(a.Position)) + proposalSize(a.Promised) + proposalSize(a.Performed) + 1
	n += 1 + uvarintSize(uint64(a.Entry.Type)) + uvarintSize(uint64(a.Entry.To))
	if a.Entry.Data != nil {
		n += stringSize(len(a.Entry.Data))
	}
	if a.Entry.Config != nil {
		n += membershipSize(a.Entry.Config)
	}
	return n
}

func messageSize(m *paxos.Message) int {
	n := 1 + uvarintSize(uint64(m.Type)) + uvarintSize(uint64(m.Cluster)) +
		uvarintSize(uint64(m.From)) + uvarintSize(uint64(m.To)) + proposalSize(m.Proposal) + 1 +
		uvarintSize(uint64(m.Position)) + uvarintSize(uint64(m.Begin)) + uvarintSize(uint64(m.End)) +
		uvarintSize(uint64(m.Result)) + uvarintSize(uint64(m.Status)) +
		uvarintSize(uint64(len(m.Actions))) + stringSize(len(m.Reason))
	for i := range m.Actions {
		n += actionSize(&m.Actions[i])
	}
	if m.Config != nil {
		n += membershipSize(m.Config)
	}
	return n
}

// decoder reads an encoding; the first error sticks and later reads return
// zero values.
type decoder struct {
	buf []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) version() {
	v := d.byte("version")
	if d.err == nil && v != CodecVersion {
		d.fail("unknown codec version %d", v)
	}
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w: %w", what, ErrCorrupt, d.err)
	}
	return nil
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail("%s: %w", field, errTruncated)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) bool(field string) bool {
	switch b := d.byte(field); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("%s: invalid bool %d", field, b)
		return false
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		if n == 0 {
			d.fail("%s: %w", field, errTruncated)
		} else {
			d.fail("%s: varint overflows 64 bits", field)
		}
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint8(field string) uint8 {
	v := d.uvarint(field)
	if v > math.MaxUint8 {
		d.fail("%s: %d out of range", field, v)
		return 0
	}
	return uint8(v)
}

// count reads an element count; each element takes at least minBytes, so a
// count the rest of the input cannot hold is rejected before allocation.
func (d *decoder) count(field string, minBytes, limit int) int {
	v := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if v > uint64(limit) || v > uint64(len(d.buf)/minBytes) {
		d.fail("%s: count %d too large for %d remaining bytes", field, v, len(d.buf))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(field string, limit int) []byte {
	v := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if v > uint64(limit) || v > uint64(len(d.buf)) {
		d.fail("%s: length %d too large for %d remaining bytes", field, v, len(d.buf))
		return nil
	}
	b := d.buf[:v:v]
	d.buf = d.buf[v:]
	return b
}

func (d *decoder) string(field string) string {
	return string(d.bytes(field, MaxStringBytes))
}

func (d *decoder) proposal() paxos.Proposal {
	r := d.uvarint("proposal round")
	id := d.uvarint("proposal replica")
	return paxos.Proposal{Round: r, Replica: paxos.ReplicaID(id)}
}

func (d *decoder) membership() *paxos.Membership {
	var ms paxos.Membership
	ms.Cluster = paxos.ClusterID(d.uvarint("membership cluster"))
	n := d.count("members", 3, MaxMembers)
	if n > 0 {
		ms.Members = make([]paxos.Member, n)
		for i := range ms.Members {
			m := &ms.Members[i]
			m.ID = paxos.ReplicaID(d.uvarint("member id"))
			m.Addr = d.string("member addr")
			m.Voter = d.bool("member voter")
		}
	}
	if d.err != nil {
		return nil
	}
	return &ms
}

func (d *decoder) action(a *paxos.Action) {
	a.Position = paxos.Position(d.uvarint("position"))
	a.Promised = d.proposal()
	a.Performed = d.proposal()
	a.Learned = d.bool("learned")
	flags := d.byte("entry flags")
	if flags&^entryFlagsKnown != 0 {
		d.fail("unknown entry flags %#x", flags)
		return
	}
	a.Entry.Type = paxos.EntryType(d.uint8("entry type"))
	if flags&entryFlagData != 0 {
		if b := d.bytes("entry data", MaxDataBytes); d.err == nil {
			a.Entry.Data = b // d.buf is the decoder's own copy
		}
	}
	a.Entry.Tombstone = flags&entryFlagTombstone != 0
	a.Entry.To = paxos.Position(d.uvarint("entry to"))
	if flags&entryFlagConfig != 0 {
		a.Entry.Config = d.membership()
	}
}
