// Package paxos is the deterministic core of regent's replicated log: the
// replica (acceptor and learner), the coordinator (proposer), recovery,
// catch-up and membership, as a state machine. Messages and ticks go in; a
// Ready batch comes out. It must not import anything but the standard library,
// and from it not time, os, log, sync or net.
package paxos
