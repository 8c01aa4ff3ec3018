// Package supervisor runs regent's master as a child process and keeps it
// running: it starts the child (the same binary, re-executed as
// `regent master`), relays its logs, readiness and heartbeats, restarts it
// with capped exponential backoff after transient failures, stops it
// gracefully (SIGTERM, then SIGKILL to its process group after a timeout),
// gives up to systemd after a restart budget, and runs notification hooks.
//
// The restart rules are a pure function ([Policy.Decide]); the exit-code
// contract is [ExitOK] (stopped on request), [ExitConfig] (permanent failure,
// never restarted) and anything else (transient, restarted). The child side
// of the private channel between the two processes is [ChildFromEnv]: a
// lifeline pipe the child watches (it exits when the supervisor dies, even by
// SIGKILL; on Linux a parent-death signal backs it up) and a notify pipe for
// readiness, heartbeats and the one-line exit reason.
//
// The package must not import master, replog/..., hcl, badger, kardianos or
// net/http: it knows nothing of what the child does, only how to keep it
// alive. It talks to systemd through a hand-written sd_notify over a unixgram
// socket.
//
// Concurrency: [Supervisor.Run] owns one supervision loop on the calling
// goroutine; every goroutine it starts (hook runners, the child's output and
// notify readers, the process waiter) ends before Run returns. A child is
// never started before the previous one has been reaped, so two masters never
// hold the same replica's storage lock.
package supervisor
