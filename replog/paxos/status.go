package paxos

//go:generate go run golang.org/x/tools/cmd/stringer -type=Status,EntryType,MessageType,Result,Role,ChangeType -output=strings.go .

// Role is what the local replica does besides accepting and learning.
type Role uint8

// Roles.
const (
	RoleFollower    Role = iota + 1 // accepts and learns only
	RoleCampaigning                 // implicit promise round and fill in progress
	RoleCoordinator                 // elected: may Propose
)

// CoreStatus is a snapshot of the core's state for logs, metrics and the
// driver's decisions.
type CoreStatus struct {
	Replica   ReplicaID
	Cluster   ClusterID
	Status    Status
	Role      Role
	Tick      uint64   // ticks since New
	Proposal  Proposal // this replica's proposal while campaigning or coordinating
	Promised  Proposal // the implicit promise
	Begin     Position // first position not truncated
	End       Position // one past the highest stored position
	LearnedTo Position // every position below it is learned (or truncated)
	// Membership is the latest learned membership, at ConfigAt. Before the
	// log's first EntryConfig it is the set of replicas that took part in
	// initialisation (Cluster zero).
	Membership Membership
	ConfigAt   Position
	Member     bool // the local replica is in Membership
	Voter      bool // ... as a voter
	// InFlight is the number of positions written but not yet learned.
	InFlight int
	// LeaseRemaining is, on a coordinator, LeaseTicks minus the ticks since
	// the send tick of the newest heartbeat or write a quorum acknowledged;
	// zero or less means no lease. The driver must subtract its clock-drift
	// margin before serving lease reads.
	LeaseRemaining int
	// Leader is the coordinator whose heartbeat this replica received within
	// LeaseTicks (itself when coordinating), or zero.
	Leader         ReplicaID
	LeaderProposal Proposal
	// Refused counts messages this replica refused (another cluster, or an
	// answer from a non-member); RefusedByPeers counts refusals received.
	Refused        uint64
	RefusedByPeers uint64
}

// CatchupStatus is the progress of a catch-up (see [Core.Catchup]): learned
// actions fetched in batches from a peer up to the highest learned position
// it reported. Every field is zero while no catch-up is in progress.
type CatchupStatus struct {
	Active bool
	// Peer is the replica asked for learned actions.
	Peer ReplicaID
	// From is the local learned position when the catch-up began, Target the
	// position it catches up to (every position below it), LearnedTo the
	// local learned position now: LearnedTo-From of Target-From positions
	// are done. A target raised on the way (the peer learned more) and
	// restarts after a timeout keep From.
	From, Target, LearnedTo Position
	// Requests is the number of catch-up requests in flight (at most
	// eight).
	Requests int
}

// Done returns the positions learned since the catch-up began.
func (s CatchupStatus) Done() Position { return s.LearnedTo - s.From }

// Total returns the positions the catch-up covers from its beginning to its
// target.
func (s CatchupStatus) Total() Position { return s.Target - s.From }
