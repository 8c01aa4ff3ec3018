package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// Chunks. An action whose sealed encoding is larger than the store's largest
// value (see maxValue) is stored as chunks of that encoding under keys of
// their own, each small enough to stay in Badger's LSM tree (never in its
// value log), and its position's key (the "head") holds a sealed descriptor
// naming them:
//
//	head:  chunkedTag, uvarint generation, uvarint count, uvarint length, CRC-32C
//	chunk: "c" + 8-byte big-endian position + 8-byte generation + 4-byte index
//
// The chunks concatenated are the sealed encoding, so the CRC is checked over
// the whole on read. A rewrite of the position writes its chunks under a new
// generation, so the chunks an older head names are never overwritten while
// that head may still be the durable one. chunkedTag is not a
// [replog.CodecVersion], so a head is told from a plain sealed action by its
// first byte.
const chunkedTag byte = 0xc5

var prefixChunk = []byte("c")

const chunkKeyLen = 1 + 8 + 8 + 4

func chunkKey(p paxos.Position, gen uint64, i int) []byte {
	k := make([]byte, chunkKeyLen)
	k[0] = prefixChunk[0]
	binary.BigEndian.PutUint64(k[1:], uint64(p))
	binary.BigEndian.PutUint64(k[9:], gen)
	binary.BigEndian.PutUint32(k[17:], uint32(i))
	return k
}

// chunkPrefix is the prefix of every chunk key of position p.
func chunkPrefix(p paxos.Position) []byte {
	k := make([]byte, 9)
	k[0] = prefixChunk[0]
	binary.BigEndian.PutUint64(k[1:], uint64(p))
	return k
}

// parseChunkKey returns the position, generation and index of a chunk key.
func parseChunkKey(k []byte) (p paxos.Position, gen uint64, i int, ok bool) {
	if len(k) != chunkKeyLen || k[0] != prefixChunk[0] {
		return 0, 0, 0, false
	}
	return paxos.Position(binary.BigEndian.Uint64(k[1:])), binary.BigEndian.Uint64(k[9:]),
		int(binary.BigEndian.Uint32(k[17:])), true
}

// chunkRef is what a head names: the generation and number of chunks of a
// sealed encoding of length bytes.
type chunkRef struct {
	gen    uint64
	count  int
	length int
}

func isChunked(v []byte) bool { return len(v) > 0 && v[0] == chunkedTag }

func encodeChunkRef(r chunkRef) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+crcLen)
	b = append(b, chunkedTag)
	b = binary.AppendUvarint(b, r.gen)
	b = binary.AppendUvarint(b, uint64(r.count))
	b = binary.AppendUvarint(b, uint64(r.length))
	return seal(b)
}

// maxChunks bounds the chunks one head may name: a sanity check against a
// corrupt descriptor (2^20 chunks of the smallest maxValue is 64 GiB).
const maxChunks = 1 << 20

func decodeChunkRef(v []byte) (chunkRef, error) {
	body, err := unseal(v)
	if err != nil {
		return chunkRef{}, fmt.Errorf("chunk descriptor: %w", err)
	}
	body = body[1:] // chunkedTag
	var f [3]uint64
	for i := range f {
		x, n := binary.Uvarint(body)
		if n <= 0 {
			return chunkRef{}, fmt.Errorf("%w: truncated chunk descriptor", replog.ErrCorrupt)
		}
		f[i], body = x, body[n:]
	}
	r := chunkRef{gen: f[0], count: int(min(f[1], maxChunks+1)), length: int(min(f[2], 1<<50))}
	if len(body) != 0 || r.count < 1 || r.count > maxChunks || r.length <= crcLen {
		return chunkRef{}, fmt.Errorf("%w: chunk descriptor %+v", replog.ErrCorrupt, r)
	}
	return r, nil
}

// sealedValue returns the sealed encoding stored at position p, whose head
// value is v: v itself, or its chunks concatenated (a new slice). A missing
// chunk or a length that does not match is corruption.
func sealedValue(txn *badger.Txn, p paxos.Position, v []byte) ([]byte, error) {
	if !isChunked(v) {
		return v, nil
	}
	r, err := decodeChunkRef(v)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, r.length)
	for i := range r.count {
		item, err := txn.Get(chunkKey(p, r.gen, i))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: chunk %d of %d (generation %d) is missing", replog.ErrCorrupt, i, r.count, r.gen)
		}
		if err != nil {
			return nil, err
		}
		if err := item.Value(func(c []byte) error {
			buf = append(buf, c...)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if len(buf) != r.length {
		return nil, fmt.Errorf("%w: chunks hold %d bytes, the descriptor says %d", replog.ErrCorrupt, len(buf), r.length)
	}
	return buf, nil
}

// storedSize is the encoded size ([replog.ActionSize]) of the action whose
// head value is v.
func storedSize(v []byte) (int, error) {
	if !isChunked(v) {
		return len(v) - crcLen, nil
	}
	r, err := decodeChunkRef(v)
	if err != nil {
		return 0, err
	}
	return r.length - crcLen, nil
}
