// Package master is one regent master process: the registry (the state
// machine Mesos keeps in its replicated log), the registrar that proposes
// registry operations through the log and applies learned entries
// deterministically, the leadership logic on top of the log's coordinator
// lease, the Mesos-compatible HTTP API, readiness, and fail-fast.
//
// master sees the replicated log only through its own small [Log] interface;
// the appliance adapts the replog node to it. master must not import
// supervisor, hcl, badger, kardianos or os/exec, and never calls os.Exit: a
// condition it cannot safely continue from ends [Master.Run] with an
// [*ExitError] whose Code the appliance turns into the process exit code
// (78 = do not restart, anything else = restart with backoff).
//
// Concurrency: [Master.Run] owns every goroutine the master starts (the log
// reader that applies learned entries, the proposer while leading, the
// leadership watch and the HTTP server) and waits for all of them before it
// returns. [Master.Handler] is safe for concurrent use.
//
// Time: timestamps the registry needs are written into log entries by the
// proposer, so applying an entry never reads the clock. Leader-only reads are
// served only while the log reports a valid coordinator lease, less
// [Config.LeaseMargin]; this assumes the clocks of the masters advance at
// rates that differ by less than that margin over one lease (bounded drift, no
// bound on offset).
//
// Fail-fast on the lease: a leader whose lease lapses stops serving
// leader-only requests at once (503) but exits only if the lease is not
// renewed within [Config.LeaseGrace] (1s), or at once if the log deposes
// it. A lapse that short is a stalled disk or process, not a partition: a
// synced save of a few hundred milliseconds on a busy machine delays the
// acknowledgements that renew the lease, and exiting on it would hand
// leadership over for nothing. Waiting is safe because reads need a live
// lease and writes need a quorum.
package master
