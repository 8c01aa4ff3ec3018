//go:build invariants

package paxos

// invariantsEnabled turns on the expensive self-checks after every call.
const invariantsEnabled = true
