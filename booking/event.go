package booking

import (
	"encoding/json"
	"time"
)

// EventType names an outbox event. The names and the payload shape are a
// published contract (docs/events.md): add fields, never rename.
type EventType string

const (
	EventBookingConfirmed   EventType = "BookingConfirmed"
	EventBookingProvisional EventType = "BookingProvisional"
	EventBookingCancelled   EventType = "BookingCancelled"
	EventBookingRescheduled EventType = "BookingRescheduled"
)

// EventSchemaVersion is the version of the payload schema written today.
const EventSchemaVersion = 1

// Event is one outbox row before it is stored: written in the same
// transaction as the booking change it describes.
type Event struct {
	ID        string // UUIDv7; the consumer's idempotency key
	Type      EventType
	Key       string // partition key: the person id, so one person's events stay in order
	Payload   []byte // JSON, see EventPayload
	Headers   map[string]string
	CreatedAt time.Time
}

// EventBooking is the booking as it appears in event payloads.
type EventBooking struct {
	ID         string `json:"id"`
	PersonID   string `json:"person_id"`
	CampaignID string `json:"campaign_id"`
	ClinicID   string `json:"clinic_id"`
	Date       Date   `json:"date"`
	Product    string `json:"product"`
	Dose       int    `json:"dose"`
	Wave       int    `json:"wave"`
	Status     Status `json:"status"`
	// LinkedID is the other dose booked together with this one (dose 1 ↔
	// dose 2), omitted for a booking made alone.
	LinkedID string `json:"linked_booking_id,omitempty"`
}

// EventPayload is the JSON body of every booking event (schema version 1).
type EventPayload struct {
	SchemaVersion int          `json:"schema_version"`
	EventID       string       `json:"event_id"`
	Type          EventType    `json:"type"`
	OccurredAt    time.Time    `json:"occurred_at"`
	Booking       EventBooking `json:"booking"`
	// Previous is set on BookingRescheduled: where the booking was before.
	Previous *EventPrevious `json:"previous,omitempty"`
	// Reason is set on BookingCancelled (see Booking.CancelReason).
	Reason string `json:"reason,omitempty"`
}

// EventPrevious is the clinic and date a rescheduled booking moved from.
type EventPrevious struct {
	ClinicID string `json:"clinic_id"`
	Date     Date   `json:"date"`
}

// Header names every event carries.
const (
	HeaderEventID       = "event-id"
	HeaderEventType     = "event-type"
	HeaderSchemaVersion = "schema-version"
	HeaderTraceparent   = "traceparent"
)

// NewEvent builds the outbox event for b. prev is the booking's clinic and
// date before a reschedule (nil otherwise); traceparent is the W3C trace
// context of the request, or "".
func NewEvent(typ EventType, b *Booking, prev *EventPrevious, traceparent string, at time.Time) Event {
	id := NewID()
	p := EventPayload{
		SchemaVersion: EventSchemaVersion,
		EventID:       id,
		Type:          typ,
		OccurredAt:    at.UTC(),
		Booking: EventBooking{
			ID: b.ID, PersonID: b.PersonID, CampaignID: b.CampaignID, ClinicID: b.ClinicID,
			Date: b.Date, Product: b.Product, Dose: b.Dose, Wave: b.Wave, Status: b.Status,
			LinkedID: b.LinkedID,
		},
		Previous: prev,
		Reason:   b.CancelReason,
	}
	body, err := json.Marshal(p)
	if err != nil {
		panic("booking: marshal event payload: " + err.Error()) // plain struct: cannot fail
	}
	h := map[string]string{
		HeaderEventID:       id,
		HeaderEventType:     string(typ),
		HeaderSchemaVersion: "1",
	}
	if traceparent != "" {
		h[HeaderTraceparent] = traceparent
	}
	return Event{ID: id, Type: typ, Key: b.PersonID, Payload: body, Headers: h, CreatedAt: at.UTC()}
}
