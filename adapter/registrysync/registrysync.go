package registrysync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/outbox"
)

// Verifier settles provisional bookings through the booking transaction
// and outbox (booking.Service implements it). Both calls are idempotent.
type Verifier interface {
	// ConfirmProvisional confirms a provisional booking (a confirmed one
	// is returned unchanged). Returns EALREADYCANCELLED if it was
	// cancelled meanwhile, ENOTFOUND for an unknown id.
	ConfirmProvisional(ctx context.Context, bookingID string) (*booking.Booking, error)
	// CancelProvisional cancels a provisional booking with reason and
	// returns its dose to its wave (a cancelled one is returned
	// unchanged). Returns ECONFLICT if it is confirmed, ENOTFOUND for an
	// unknown id.
	CancelProvisional(ctx context.Context, bookingID, reason string) (*booking.Booking, error)
}

// ReasonIneligible is the cancel reason for a provisional booking the
// registry does not allow.
const ReasonIneligible = "ineligible"

// Config configures a Handler.
type Config struct {
	// Registry is where events are applied; in production the
	// adapter.Facade. Required.
	Registry adapter.Registry
	// Verifier settles provisional bookings. Nil makes BookingProvisional
	// events fail permanently (dead letters) — a deployment that never
	// books provisionally needs none.
	Verifier Verifier
	// Invalidate, when set, is called with the person's id after the
	// registry has applied a booking, a cancellation or a reschedule of
	// theirs (not after a rejection or a failure, nor for a provisional
	// booking's verification, which only reads): the registry's view of the
	// person has changed, so their eligibility cache entry must be
	// refreshed. Pass (*cache.Cache).Invalidate. It must not block: it
	// runs on the consumer's goroutine.
	Invalidate func(ctx context.Context, personID string)
	// Logger receives structured logs (never person ids); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Handler applies booking events to the registry. Use Handle as the
// outbox.Handler.
type Handler struct {
	reg        adapter.Registry
	ver        Verifier
	invalidate func(ctx context.Context, personID string)
	log        *slog.Logger
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Registry == nil {
		return nil, errors.New("registrysync: Config.Registry is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{reg: cfg.Registry, ver: cfg.Verifier, invalidate: cfg.Invalidate,
		log: cfg.Logger.With("component", "registrysync")}, nil
}

var _ outbox.Handler = (*Handler)(nil).Handle

// Handle applies one event. See the package documentation.
func (h *Handler) Handle(ctx context.Context, m outbox.Message) error {
	var p booking.EventPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return fmt.Errorf("%w: decode event payload: %w", outbox.ErrPermanent, err)
	}
	if p.SchemaVersion < 1 || p.Booking.ID == "" || p.Booking.PersonID == "" {
		return fmt.Errorf("%w: event %s has no schema version or booking", outbox.ErrPermanent, m.EventID)
	}
	eventID := p.EventID
	if eventID == "" {
		eventID = m.EventID
	}
	var err error
	wrote := true // the registry's view of the person changed
	switch p.Type {
	case booking.EventBookingConfirmed:
		err = h.record(ctx, p.Booking.ID, p.Booking)
	case booking.EventBookingCancelled:
		err = h.cancelAll(ctx, p.Booking, "")
	case booking.EventBookingRescheduled:
		err = h.reschedule(ctx, eventID, p.Booking)
	case booking.EventBookingProvisional:
		err, wrote = h.verify(ctx, p.Booking), false
	default:
		return fmt.Errorf("%w: unknown event type %q", outbox.ErrPermanent, p.Type)
	}
	if err != nil {
		return classify(fmt.Errorf("%s booking %s: %w", p.Type, p.Booking.ID, err))
	}
	if wrote && h.invalidate != nil {
		h.invalidate(ctx, p.Booking.PersonID)
	}
	return nil
}

// classify maps registry errors onto the consumer's: rejected → permanent,
// unavailable → pause, the rest retryable.
func classify(err error) error {
	switch {
	case errors.Is(err, outbox.ErrPermanent), errors.Is(err, outbox.ErrPause):
		return err
	case errors.Is(err, adapter.ErrRejected):
		return fmt.Errorf("%w: %w", outbox.ErrPermanent, err)
	case errors.Is(err, adapter.ErrUnavailable):
		return fmt.Errorf("%w: %w", outbox.ErrPause, err)
	}
	return err
}

func record(id string, b booking.EventBooking) adapter.BookingRecord {
	return adapter.BookingRecord{
		BookingID: id, PersonID: b.PersonID, CampaignID: b.CampaignID, ClinicID: b.ClinicID,
		Date:    time.Date(b.Date.Year, b.Date.Month, b.Date.Day, 0, 0, 0, 0, time.UTC),
		Product: b.Product, Dose: b.Dose,
	}
}

func (h *Handler) record(ctx context.Context, registryID string, b booking.EventBooking) error {
	return h.reg.RecordBooking(ctx, record(registryID, b))
}

// RegistryID is the id under which the registry holds a booking after the
// reschedule carried by event eventID: UUIDv5 of "bookingID/eventID" in
// the URL namespace. It fits the registry's 40-character id column.
func RegistryID(bookingID, eventID string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("yeyak:reschedule:"+bookingID+"/"+eventID)).String()
}

// reschedule records the booking at its new clinic and date under a
// derived id, then cancels its other registry reservations.
func (h *Handler) reschedule(ctx context.Context, eventID string, b booking.EventBooking) error {
	if b.Status == booking.StatusProvisional {
		return nil // not in the registry yet; its BookingConfirmed carries the new place
	}
	if b.Status == booking.StatusCancelled {
		return h.cancelAll(ctx, b, "")
	}
	newID := RegistryID(b.ID, eventID)
	if err := h.record(ctx, newID, b); err != nil {
		return err
	}
	return h.cancelAll(ctx, b, newID)
}

// cancelAll cancels the booking's original registry reservation and any
// reservation a reschedule recorded (the person's active ones for the same
// campaign and dose), except keep.
func (h *Handler) cancelAll(ctx context.Context, b booking.EventBooking, keep string) error {
	if keep != b.ID {
		if err := h.reg.CancelBooking(ctx, b.ID); err != nil {
			return err
		}
	}
	rec, err := h.reg.Eligibility(ctx, b.PersonID)
	if errors.Is(err, adapter.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, r := range rec.Bookings {
		if r.BookingID == keep || r.BookingID == b.ID || r.CampaignID != b.CampaignID || r.Dose != b.Dose {
			continue
		}
		if err := h.reg.CancelBooking(ctx, r.BookingID); err != nil {
			return err
		}
	}
	return nil
}

// verify settles a provisional booking from the registry's answer.
func (h *Handler) verify(ctx context.Context, b booking.EventBooking) error {
	if h.ver == nil {
		return fmt.Errorf("%w: no Verifier configured for provisional bookings", outbox.ErrPermanent)
	}
	rec, err := h.reg.Eligibility(ctx, b.PersonID)
	eligible := true
	switch {
	case errors.Is(err, adapter.ErrNotFound):
		eligible = false
	case err != nil:
		return err
	default:
		eligible = Eligible(rec, b.Dose)
	}
	if eligible {
		_, err = h.ver.ConfirmProvisional(ctx, b.ID)
		switch booking.ErrorCode(err) {
		case "":
			h.log.InfoContext(ctx, "provisional booking verified", "booking_id", b.ID, "campaign_id", b.CampaignID)
			return nil
		case booking.EALREADYCANCELLED:
			return nil // the person cancelled meanwhile: nothing to confirm
		case booking.ECONFLICT:
			return err // the status changed under us: retry reads it afresh
		}
		return verifierError(err)
	}
	_, err = h.ver.CancelProvisional(ctx, b.ID, ReasonIneligible)
	switch booking.ErrorCode(err) {
	case "":
		h.log.InfoContext(ctx, "provisional booking cancelled: ineligible", "booking_id", b.ID, "campaign_id", b.CampaignID)
		return nil
	case booking.ECONFLICT:
		// Confirmed meanwhile (not by us: we only confirm eligible people).
		// Leave it to the people who can judge: dead letter.
		return fmt.Errorf("%w: ineligible person's booking is already confirmed: %w", outbox.ErrPermanent, err)
	}
	return verifierError(err)
}

// verifierError makes domain refusals permanent; infrastructure errors
// (booking.EINTERNAL: the database) stay retryable.
func verifierError(err error) error {
	switch booking.ErrorCode(err) {
	case booking.EINTERNAL:
		return err
	}
	return fmt.Errorf("%w: %w", outbox.ErrPermanent, err)
}

// Eligible reports whether the registry's record allows booking dose: not
// contraindicated, not excluded, and that dose not already given.
func Eligible(rec adapter.Record, dose int) bool {
	if rec.Contraindicated || rec.Excluded {
		return false
	}
	for _, d := range rec.Doses {
		if d.Number >= dose {
			return false
		}
	}
	return true
}
