package sqlstore

import (
	"testing"

	"github.com/yeyak/yeyak/booking"
)

func TestValidateNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(b *booking.Booking)
		valid  bool
	}{
		{"confirmed", func(*booking.Booking) {}, true},
		{"provisional", func(b *booking.Booking) { b.Status = booking.StatusProvisional }, true},
		{"open wave", func(b *booking.Booking) { b.Wave = booking.OpenWave }, true},
		{"cancelled", func(b *booking.Booking) { b.Status = booking.StatusCancelled }, false},
		{"no status", func(b *booking.Booking) { b.Status = "" }, false},
		{"no id", func(b *booking.Booking) { b.ID = "" }, false},
		{"no person", func(b *booking.Booking) { b.PersonID = "" }, false},
		{"no campaign", func(b *booking.Booking) { b.CampaignID = "" }, false},
		{"no clinic", func(b *booking.Booking) { b.ClinicID = "" }, false},
		{"no product", func(b *booking.Booking) { b.Product = "" }, false},
		{"no date", func(b *booking.Booking) { b.Date = booking.Date{} }, false},
		{"dose 0", func(b *booking.Booking) { b.Dose = 0 }, false},
		{"negative wave", func(b *booking.Booking) { b.Wave = -1 }, false},
	} {
		b := newBooking("p1", "c1", day1, 1, 3)
		tc.change(b)
		err := validateNew(b)
		if tc.valid != (err == nil) {
			t.Errorf("%s: validateNew = %v, want valid=%v", tc.name, err, tc.valid)
		}
		if err != nil && booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("%s: code %q, want EINVALID", tc.name, booking.ErrorCode(err))
		}
	}
	if booking.ErrorCode(validateNew(nil)) != booking.EINVALID {
		t.Error("nil booking accepted")
	}
}
