package replog_test

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/replogtest"
)

// A single-master log: build the node over a store, attach it to a
// transport, run it, become the coordinator, append and read back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st := replogtest.NewStorage() // badgerstore.Open(dir, opts) in production
	n, err := replog.New(replog.Config{
		Addr:           "127.0.0.1:5051",
		Masters:        []string{"127.0.0.1:5051"},
		Quorum:         1,
		AutoInitialize: true,
	}, st)
	if err != nil {
		panic(err)
	}
	tr := replogtest.NewNetwork(1).Join("127.0.0.1:5051", n.ID, n.Step) // replog/peer in production
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, tr) }()
	defer func() {
		_ = n.Close()
		if err := <-done; err != nil {
			panic(err)
		}
	}()

	var last uint64
	for {
		p, err := n.Elect(ctx) // fails until the new log is initialised
		if err == nil {
			last = uint64(p)
			break
		}
		select {
		case <-ctx.Done():
			panic(err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, s := range []string{"alpha", "beta"} {
		if _, err := n.Append(ctx, []byte(s)); err != nil {
			panic(err)
		}
	}
	es, err := n.Read(ctx, 0)
	if err != nil {
		panic(err)
	}
	for _, e := range es {
		if uint64(e.Position) > last {
			fmt.Printf("%s %s\n", e.Type, e.Data)
		}
	}
	// Output:
	// EntryAppend alpha
	// EntryAppend beta
}
