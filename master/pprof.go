package master

import (
	"net/http"
	"net/http/pprof"
	"runtime"
)

// Sampling rates while profiling is enabled: one in mutexProfileFraction
// contention events, and blocking events of at least blockProfileRate
// nanoseconds (in proportion below it). Both are cheap enough to leave on
// for a benchmark.
const (
	mutexProfileFraction = 10
	blockProfileRate     = 100_000
)

// routePProf registers net/http/pprof's handlers on mux explicitly: the
// index with every named profile (heap, allocs, goroutine, mutex, block,
// threadcreate) under /debug/pprof/, and the CPU profile, execution trace,
// command line and symbol lookup. Importing net/http/pprof also registers
// them on http.DefaultServeMux, which the master never serves.
func routePProf(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// enableProfiling turns on the runtime's mutex and block profiles, which are
// off unless a rate is set. It changes process-wide state, so only Run calls
// it, and only with [Config.EnablePProf].
func enableProfiling() {
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	runtime.SetBlockProfileRate(blockProfileRate)
}
