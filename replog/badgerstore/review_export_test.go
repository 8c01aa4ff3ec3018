package badgerstore

// MuteRotationMessage makes the store deaf to Badger's log message of a
// memtable rotation, as it would be should a Badger release reword or drop
// it. Call it before the first Save.
func (s *Store) MuteRotationMessage() { s.ls.rotation = nil }

// SetFreeSpaceReserve changes the reserve of an open store. Call it while no
// Save is in progress.
func (s *Store) SetFreeSpaceReserve(n int64) { s.opts.FreeSpaceReserve = n }

// CloseEngine closes the Badger a Close below the reserve left open.
func (s *Store) CloseEngine() error { return s.db.Close() }
