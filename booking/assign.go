package booking

import (
	"context"
	"iter"
	"slices"
	"strings"
)

// Slot is a clinic, date and product a person could be booked into.
type Slot struct {
	ClinicID string
	Date     Date
	Product  string
}

// AssignRequest asks to book a person into the first of several candidate
// slots that has a dose (POST /v1/bookings:assign).
type AssignRequest struct {
	// PersonID is the authenticated person; they book for themselves only.
	PersonID   string
	CampaignID string
	// Product, when set, skips candidates of other products.
	Product string
	// Dates, when set, skips candidates on other dates.
	Dates []Date
	// Candidates yields the slots to try in order of preference, nearest
	// first (the HTTP layer builds it from the geo index and the quota
	// snapshot). Assign stops pulling from it at the first booking made,
	// so it may be lazy and long.
	Candidates iter.Seq[Slot]
	// BirthDate and Traceparent are as in BookRequest.
	BirthDate   Date
	Traceparent string
}

// Assign books the person into the first candidate slot that has a dose
// for them, as Book would (dose 2 included), and returns the booking. The
// person, their eligibility and the campaign's phases are checked once;
// then the candidates are tried in order: a candidate that is sold out, or
// whose dose 2 has no date left (ESECONDDOSE), is passed over for the
// next, so a dose taken by someone else between the search and the
// booking costs one more try, not a failure. Candidates of a product the
// person has had every dose of are skipped.
//
// Returns ESOLDOUT when no candidate had a dose (or there were none), and
// ENOTELIGIBLE when every candidate was of a product the person may not
// have. Any other error stops at the candidate that caused it: EINVALID
// for a candidate with an unknown clinic, a clinic without the product or
// a date outside the dose's dates, EALREADYBOOKED, and the refusals of
// Book (EUNKNOWNPERSON, ENOTELIGIBLE, EREGISTRYDOWN, ENOTYOURDAY, …) before
// any candidate is tried. Nothing is written on error.
func (s *Service) Assign(ctx context.Context, req AssignRequest) (*Booking, error) {
	if strings.TrimSpace(req.PersonID) == "" || strings.TrimSpace(req.CampaignID) == "" || req.Candidates == nil {
		return nil, Errorf(EINVALID, "person, campaign and candidates are required")
	}
	c, err := s.Campaign(ctx, req.CampaignID)
	if err != nil {
		return nil, err
	}
	var only *Product
	if req.Product != "" {
		p, ok := c.Product(req.Product)
		if !ok {
			return nil, Errorf(EINVALID, "product %q is not offered by this campaign", req.Product)
		}
		only = &p
	}
	sub, d, err := s.admit(ctx, c, req.PersonID, req.BirthDate, only)
	if err != nil {
		return nil, err
	}
	tried, ineligible := 0, 0
	for slot := range req.Candidates {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if (req.Product != "" && slot.Product != req.Product) || (len(req.Dates) > 0 && !slices.Contains(req.Dates, slot.Date)) {
			continue
		}
		product, err := s.checkSlot(ctx, c, slot.ClinicID, slot.Product)
		if err != nil {
			return nil, err
		}
		if eligible(sub.person, product) != nil {
			ineligible++
			continue
		}
		tried++
		bs, err := s.place(ctx, c, product, sub, d, slot.ClinicID, slot.Date, req.Traceparent)
		switch ErrorCode(err) {
		case "":
			s.log.InfoContext(ctx, "booking assigned", "booking_id", bs[0].ID, "campaign_id", c.ID, "clinic_id", bs[0].ClinicID, "tries", tried)
			s.personChanged(ctx, req.PersonID)
			return bs[0], nil
		case ESOLDOUT, ESECONDDOSE:
			continue
		default:
			return nil, err
		}
	}
	if tried == 0 && ineligible > 0 {
		return nil, Errorf(ENOTELIGIBLE, "The person has already received every dose of the products on offer here.")
	}
	return nil, Errorf(ESOLDOUT, "No clinic among the %d tried has a dose left.", tried)
}
