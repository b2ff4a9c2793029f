package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// FuzzDecodeBookingRequest: the decoder never panics, only ever answers
// invalid_request, and whatever it accepts is complete and round-trips.
// Seeds live in testdata/fuzz/FuzzDecodeBookingRequest (CI runs them).
func FuzzDecodeBookingRequest(f *testing.F) {
	f.Add([]byte(`{"campaign_id":"c2026","clinic_id":"C000001","date":"2026-08-12","product":"pfizer"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := httpapi.DecodeBookingRequest(body)
		if err != nil {
			if booking.ErrorCode(err) != booking.EINVALID {
				t.Fatalf("error code %q for %q", booking.ErrorCode(err), body)
			}
			return
		}
		if req.CampaignID == "" || req.ClinicID == "" || req.Product == "" || req.Date.IsZero() {
			t.Fatalf("accepted an incomplete request %+v from %q", req, body)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := httpapi.DecodeBookingRequest(again)
		if err != nil || back != req {
			t.Fatalf("round trip of %+v: %+v, %v", req, back, err)
		}
	})
}
