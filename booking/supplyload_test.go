package booking_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/yeyak/yeyak/booking"
)

func TestSupplyFormatOf(t *testing.T) {
	for in, want := range map[string]booking.SupplyFormat{
		"csv": booking.SupplyCSV, "JSON": booking.SupplyJSON, "text/csv": booking.SupplyCSV,
		"application/json; charset=utf-8": booking.SupplyJSON, "supply-2021-08.CSV": booking.SupplyCSV,
		"/tmp/in/supply.json": booking.SupplyJSON,
	} {
		if got, err := booking.SupplyFormatOf(in); err != nil || got != want {
			t.Errorf("SupplyFormatOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "xml", "supply.xlsx", "text/plain"} {
		if _, err := booking.SupplyFormatOf(in); booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("SupplyFormatOf(%q) = %v, want EINVALID", in, err)
		}
	}
}

func TestSupplyConflictError(t *testing.T) {
	var cs []booking.SupplyConflict
	for i := range 25 {
		cs = append(cs, booking.SupplyConflict{Line: i + 2, ClinicID: "C1", Date: d("2021-09-01"), Product: "pfizer", Dose: 1, Doses: 1, Booked: 3})
	}
	e := booking.NewSupplyConflictError(cs)
	if e.AffectedBookings != 75 || e.Excess != 50 {
		t.Fatalf("totals = %d affected, %d excess", e.AffectedBookings, e.Excess)
	}
	var err error = e
	if booking.ErrorCode(err) != booking.ECONFLICT || !errors.Is(err, &booking.Error{Code: booking.ECONFLICT}) {
		t.Errorf("code = %q", booking.ErrorCode(err))
	}
	msg := booking.ErrorMessage(err)
	if !strings.Contains(msg, "25 row(s), 75 active booking(s) affected, 50 over") || !strings.Contains(msg, "and 5 more") {
		t.Errorf("message %q", msg)
	}
}

func TestConstructorsNeedAStore(t *testing.T) {
	if _, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{}); err == nil {
		t.Error("NewSupplyLoader without a store")
	}
	if _, err := booking.NewRoller(booking.RollerConfig{}); err == nil {
		t.Error("NewRoller without a store")
	}
}
