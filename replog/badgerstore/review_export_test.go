package badgerstore

// MuteRotationMessage makes the store deaf to Badger's log message of a
// memtable rotation, as it would be should a Badger release reword or drop
// it. Call it before the first Save.
func (s *Store) MuteRotationMessage() { s.ls.rotation = nil }
