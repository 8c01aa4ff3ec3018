package master

import (
	"strconv"
	"unicode/utf8"
)

// Fast paths for the two JSON shapes every write takes: the body of PUT
// /weights (an array of {"role","weight"} objects) and a log entry of
// weight updates alone, as encodeBatch writes it (every follower decodes
// each entry). Each accepts only the compact form with the keys in
// encoding/json's order, strings without escapes and numbers in JSON's
// grammar, and reports false for anything else, so the caller falls back
// to encoding/json. Whatever they accept, encoding/json decodes to the same
// value (FuzzFastJSON checks it): applying entries stays deterministic
// whichever path decoded them.

// jsonScan reads a JSON text from the front.
type jsonScan struct {
	b []byte
	i int
}

// lit consumes s if the text continues with it.
func (s *jsonScan) lit(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str consumes a string of valid UTF-8 without escapes or control
// characters (encoding/json returns such a string's bytes as they are).
func (s *jsonScan) str() (string, bool) {
	if !s.lit(`"`) {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			s.i += n
		}
	}
	return "", false
}

// number consumes a number in JSON's grammar and returns its text.
func (s *jsonScan) number() ([]byte, bool) {
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// float consumes a number that fits a float64, as encoding/json parses it.
func (s *jsonScan) float() (float64, bool) {
	t, ok := s.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(t), 64)
	return f, err == nil
}

// integer consumes an integer (no fraction or exponent) that fits an
// int64, as encoding/json parses one into an int64.
func (s *jsonScan) integer() (int64, bool) {
	t, ok := s.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	return n, err == nil
}

// unsigned consumes an integer that fits a uint64.
func (s *jsonScan) unsigned() (uint64, bool) {
	t, ok := s.number()
	if !ok || t[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(t), 10, 64)
	return n, err == nil
}

// weightInfos consumes a non-empty array of {"role":…,"weight":…}
// objects, appending them to ws.
func (s *jsonScan) weightInfos(ws []WeightInfo) ([]WeightInfo, bool) {
	if !s.lit(`[`) {
		return nil, false
	}
	for {
		var w WeightInfo
		var ok bool
		if !s.lit(`{"role":`) {
			return nil, false
		}
		if w.Role, ok = s.str(); !ok || !s.lit(`,"weight":`) {
			return nil, false
		}
		if w.Weight, ok = s.float(); !ok || !s.lit(`}`) {
			return nil, false
		}
		ws = append(ws, w)
		if s.lit(`]`) {
			return ws, true
		}
		if !s.lit(`,`) {
			return nil, false
		}
	}
}

// fastWeightInfos decodes a PUT /weights body, or reports false.
func fastWeightInfos(data []byte) ([]WeightInfo, bool) {
	s := &jsonScan{b: data}
	ws, ok := s.weightInfos(make([]WeightInfo, 0, 1))
	if !ok || s.i != len(data) {
		return nil, false
	}
	return ws, true
}

// fastPlainBatch decodes a batch of weight updates alone as encodeBatch
// writes it, or reports false.
func fastPlainBatch(data []byte) (*batch, bool) {
	s := &jsonScan{b: data}
	var b batch
	var ok bool
	var v int64
	if !s.lit(`{"v":`) {
		return nil, false
	}
	if v, ok = s.integer(); !ok || v != batchVersion || !s.lit(`,"time":`) {
		return nil, false
	}
	b.Version = int(v)
	if b.Time, ok = s.integer(); !ok || !s.lit(`,"proposer":`) {
		return nil, false
	}
	if b.Proposer, ok = s.str(); !ok || !s.lit(`,"seq":`) {
		return nil, false
	}
	if b.Seq, ok = s.unsigned(); !ok || !s.lit(`,"ops":[`) {
		return nil, false
	}
	// One weight update per operation is the common case: allocate the
	// infos of all operations in one slice.
	infos := make([]WeightInfo, 0, 16)
	for {
		if !s.lit(`{"type":"UPDATE_WEIGHTS","weight_infos":`) {
			return nil, false
		}
		from := len(infos)
		if infos, ok = s.weightInfos(infos); !ok || !s.lit(`}`) {
			return nil, false
		}
		b.Ops = append(b.Ops, Operation{Type: OpUpdateWeights, WeightInfos: infos[from:len(infos):len(infos)]})
		if s.lit(`]}`) {
			break
		}
		if !s.lit(`,`) {
			return nil, false
		}
	}
	if s.i != len(data) {
		return nil, false
	}
	return &b, true
}
