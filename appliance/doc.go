// Package appliance is the regent command: it parses the command line,
// decodes and validates the HCL configuration, builds the root hclog logger,
// and wires the supervisor, the master and the replicated log together.
//
// It owns the subcommands (run, master, dev, status, config, version,
// service, log, members, bench), the conversion of the decoded [Config] into
// each package's runtime configuration, and the mapping of errors to exit
// codes. It holds no protocol or restart logic of its own: that lives in
// supervisor, master and replog.
//
// Concurrency: [Main] runs one subcommand on the calling goroutine; a
// subcommand that starts goroutines waits for them before it returns. Nothing
// in the package keeps global mutable state, so tests call [Main] (or the
// unexported run) concurrently with their own [Env].
package appliance
