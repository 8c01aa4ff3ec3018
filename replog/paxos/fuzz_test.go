package paxos

import (
	"strings"
	"testing"
)

// FuzzStep feeds a VOTING replica (and, after a campaign, a coordinator)
// arbitrary messages. It must never panic, except on the broken invariant of
// two values learned at one position, which only a peer violating the
// protocol can cause.
func FuzzStep(f *testing.F) {
	f.Add([]byte{1, 2, 1, 0, 1, 0, 0, 0, 1, 4, 0})
	f.Add([]byte{3, 2, 1, 2, 1, 1, 1, 2, 1, 4, 2, 2, 1, 5, 0, 1})
	f.Add([]byte{5, 3, 0, 0, 0, 1, 2, 0, 1, 4, 1, 4, 2, 3})
	f.Add([]byte{9, 2, 0, 0, 3, 0, 9, 0, 1, 4, 3, 1, 1, 1, 2, 5, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func() {
			if r := recover(); r != nil {
				if s, ok := r.(string); ok && strings.Contains(s, "two values learned") {
					return
				}
				panic(r)
			}
		}()
		s := votingStore(1, Proposal{1, 2}, testMembership(1, 2, 3))
		c, err := New(testConfig(1), s)
		if err != nil {
			t.Fatal(err)
		}
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return int(b)
		}
		for len(data) > 0 {
			switch op := next() % 16; {
			case op == 14:
				c.Tick()
			case op == 15:
				_ = c.Campaign()
			default:
				m := Message{
					Type:     MessageType(op%14 + 1),
					Cluster:  ClusterID(next() % 2 * 7),
					From:     ReplicaID(next() % 5),
					To:       ReplicaID(next() % 3),
					Proposal: Proposal{Round: uint64(next() % 6), Replica: ReplicaID(next() % 4)},
					Implicit: next()%2 == 0,
					Position: Position(next() % 8),
					Begin:    Position(next() % 8),
					End:      Position(next() % 10),
					Result:   Result(next() % 4),
					Status:   Status(next() % 5),
				}
				if next()%3 == 0 {
					mm := testMembership(1, 2, ReplicaID(next()%5))
					m.Config = &mm
				}
				for n := next() % 4; n > 0; n-- {
					a := Action{Position: Position(next() % 8), Learned: next()%2 == 0,
						Promised: Proposal{uint64(next() % 6), 2}, Performed: Proposal{uint64(next() % 6), 2}}
					switch next() % 5 {
					case 0:
						a.Entry = Entry{Type: EntryNop, Tombstone: next()%4 == 0}
					case 1:
						a.Entry = Entry{Type: EntryAppend, Data: []byte{byte(next())}}
					case 2:
						a.Entry = Entry{Type: EntryTruncate, To: Position(next() % 8)}
					case 3:
						a.Entry = Entry{Type: EntrySnapshot}
					case 4:
						mm := testMembership(1, 2, 3)
						a.Entry = Entry{Type: EntryConfig, Config: &mm}
					}
					m.Actions = append(m.Actions, a)
				}
				if err := c.Step(m); err != nil {
					t.Fatal(err)
				}
			}
			for c.HasReady() {
				rd := c.Ready()
				s.save(rd)
				s.sync()
				c.Advance(rd)
			}
		}
	})
}
