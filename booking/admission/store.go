package admission

import (
	"context"
	"time"
)

// PersonKey stands for a person in a store: a keyed hash (HMAC-SHA256 with
// Config.PersonSalt, truncated to 128 bits) of the person id. Stores never
// see raw person ids.
type PersonKey [16]byte

// State is where a person stands in the line.
type State int

// States of a place.
const (
	// StateUnknown: the store has no place for the person (never joined,
	// or the place was forgotten ClaimWindow after admission).
	StateUnknown State = iota
	// StatePending: joined in the pre-opening window; the place is drawn
	// at the opening.
	StatePending
	// StateWaiting: in line, not yet admitted.
	StateWaiting
	// StateAdmitted: admitted; passes are issued until the place is forgotten.
	StateAdmitted
)

// String names the state as the API shows it.
func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateWaiting:
		return "waiting"
	case StateAdmitted:
		return "admitted"
	}
	return "unknown"
}

// Place is one person's place in the line.
type Place struct {
	// Seq is the arrival sequence number (1, 2, …), unique in the store.
	Seq   uint64
	State State
	// Ahead counts the people still waiting ahead: for StateWaiting those
	// ranked before the person; for StatePending everyone ranked before the
	// draw (the draw then places the person among Pending).
	Ahead int64
	// Pending is the size of the draw the person is in (StatePending only).
	Pending int64
}

// Stats is the line as a whole.
type Stats struct {
	// Waiting counts people ranked and not yet admitted.
	Waiting int64
	// Pending counts people waiting for a draw.
	Pending int64
	// Admitted counts everyone admitted since the store began.
	Admitted int64
}

// Step is the input of one admission step.
type Step struct {
	// Now is the server time of the step.
	Now time.Time
	// Rate is the admission rate (people per second) since the last step.
	Rate float64
	// Burst caps the credit banked while nobody can be admitted (nobody
	// ranked and waiting), in people: the burst admitted when people come.
	Burst float64
	// ForgetBefore: places admitted before this time are forgotten.
	ForgetBefore time.Time
}

// Store holds the line: who joined when, the ranking (arrival order, with
// each pre-opening draw shuffled), and the admission cursor. Implementations
// are safe for concurrent use, and for use by several processes when the
// store is shared (Redis).
type Store interface {
	// Join returns the person's place, creating one when the person has
	// none. A new place joins the draw at drawAt when drawAt is non-zero and
	// that draw has not happened yet; otherwise it is ranked at the back.
	// created reports whether the place is new. Joining twice never changes
	// a place.
	Join(ctx context.Context, key PersonKey, drawAt time.Time) (p Place, created bool, err error)
	// Place returns the person's place (StateUnknown if none).
	Place(ctx context.Context, key PersonKey) (Place, error)
	// Draw ranks everyone pending for the draw at opening (and any earlier
	// draw) at the back of the line in the order given by shuffle, which is
	// a Fisher–Yates shuffle such as rand.Shuffle. Draw is idempotent.
	Draw(ctx context.Context, opening time.Time, shuffle func(n int, swap func(i, j int))) error
	// Advance admits up to Rate × elapsed people from the front of the line
	// (credit carries over; while nobody waits it is capped by Burst), forgets places admitted
	// before ForgetBefore, and returns how many it admitted and the line's
	// stats after the step.
	Advance(ctx context.Context, s Step) (admitted int64, st Stats, err error)
}
