package booking

import "github.com/google/uuid"

// NewID returns a new UUIDv7: time-ordered, so ids sort by creation and index
// well, and unguessable enough that an id alone grants nothing (ownership is
// still checked on every read).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
