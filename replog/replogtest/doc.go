// Package replogtest holds the test doubles of package replog: a memory
// [Storage] that records every write and sync and whose [Storage.Crash] keeps
// only the synced state, an in-memory [Network] of transports with
// partitions, drops and filters, and the storage conformance suite
// ([RunStorageTests], [RunReopenTests]) that every replog.Storage
// implementation must pass.
//
// It may be imported only from _test.go files. Its fakes are safe for
// concurrent use.
package replogtest
