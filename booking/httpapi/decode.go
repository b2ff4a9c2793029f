package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/yeyak/yeyak/booking"
)

// MaxBodyBytes is the largest request body the API reads (64 KiB).
const MaxBodyBytes = 64 << 10

// BookingRequest is the body of POST /v1/bookings.
type BookingRequest struct {
	CampaignID string       `json:"campaign_id"`
	ClinicID   string       `json:"clinic_id"`
	Date       booking.Date `json:"date"`
	Product    string       `json:"product"`
}

// RescheduleRequest is the body of POST /v1/bookings/{id}/reschedule.
type RescheduleRequest struct {
	ClinicID string       `json:"clinic_id"`
	Date     booking.Date `json:"date"`
}

// AssignRequest is the body of POST /v1/bookings:assign.
type AssignRequest struct {
	CampaignID string `json:"campaign_id"`
	Near       *Point `json:"near"`
	// Product and Dates narrow the candidates (optional).
	Product string         `json:"product,omitempty"`
	Dates   []booking.Date `json:"dates,omitempty"`
	// RadiusKm bounds the search (optional; default 10, at most 100).
	RadiusKm float64 `json:"radius_km,omitempty"`
}

// Point is a place on Earth in degrees.
type Point struct {
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
}

// maxAssignDates bounds the dates of an assign request.
const maxAssignDates = 31

// DecodeAssignRequest strictly decodes an assign request body (the rules of
// DecodeBookingRequest; near is required, product and dates optional).
func DecodeAssignRequest(body []byte) (AssignRequest, error) {
	var req AssignRequest
	if err := decodeStrict(body, &req); err != nil {
		return req, err
	}
	if err := checkID("campaign_id", req.CampaignID); err != nil {
		return req, err
	}
	if req.Near == nil || req.Near.Lat == nil || req.Near.Lon == nil {
		return req, booking.Errorf(booking.EINVALID, "near is required: {\"lat\":…,\"lon\":…}")
	}
	if err := checkPoint(*req.Near.Lat, *req.Near.Lon); err != nil {
		return req, err
	}
	if req.Product != "" {
		if err := checkID("product", req.Product); err != nil {
			return req, err
		}
	}
	if len(req.Dates) > maxAssignDates {
		return req, booking.Errorf(booking.EINVALID, "at most %d dates", maxAssignDates)
	}
	for _, d := range req.Dates {
		if d.IsZero() {
			return req, booking.Errorf(booking.EINVALID, "dates must be YYYY-MM-DD")
		}
	}
	if err := checkRadius(req.RadiusKm, true); err != nil {
		return req, err
	}
	return req, nil
}

// checkPoint refuses coordinates off the globe (and NaN).
func checkPoint(lat, lon float64) error {
	if !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180) {
		return booking.Errorf(booking.EINVALID, "near must be a latitude in [-90, 90] and a longitude in [-180, 180]")
	}
	return nil
}

// checkRadius refuses radii outside (0, clinicsearch.MaxRadiusKm]; zero
// means the default when allowed.
func checkRadius(r float64, zeroOK bool) error {
	if r == 0 && zeroOK {
		return nil
	}
	if !(r > 0 && r <= maxRadiusKm) {
		return booking.Errorf(booking.EINVALID, "radius_km must be more than 0 and at most %d", maxRadiusKm)
	}
	return nil
}

// maxIDLen bounds every id-like field of a request.
const maxIDLen = 64

// DecodeBookingRequest strictly decodes a booking request body: one JSON
// object, no unknown fields, no trailing data, every field present, dates
// YYYY-MM-DD. Errors are booking errors with code invalid_request.
func DecodeBookingRequest(body []byte) (BookingRequest, error) {
	var req BookingRequest
	if err := decodeStrict(body, &req); err != nil {
		return req, err
	}
	for _, f := range []struct{ name, v string }{
		{"campaign_id", req.CampaignID}, {"clinic_id", req.ClinicID}, {"product", req.Product},
	} {
		if err := checkID(f.name, f.v); err != nil {
			return req, err
		}
	}
	if req.Date.IsZero() {
		return req, booking.Errorf(booking.EINVALID, "date is required (YYYY-MM-DD)")
	}
	return req, nil
}

// DecodeRescheduleRequest is DecodeBookingRequest for a reschedule body.
func DecodeRescheduleRequest(body []byte) (RescheduleRequest, error) {
	var req RescheduleRequest
	if err := decodeStrict(body, &req); err != nil {
		return req, err
	}
	if err := checkID("clinic_id", req.ClinicID); err != nil {
		return req, err
	}
	if req.Date.IsZero() {
		return req, booking.Errorf(booking.EINVALID, "date is required (YYYY-MM-DD)")
	}
	return req, nil
}

func checkID(name, v string) error {
	switch {
	case v == "":
		return booking.Errorf(booking.EINVALID, "%s is required", name)
	case len(v) > maxIDLen:
		return booking.Errorf(booking.EINVALID, "%s is longer than %d bytes", name, maxIDLen)
	}
	for _, r := range v {
		if r < 0x21 || r > 0x7e {
			return booking.Errorf(booking.EINVALID, "%s must be printable ASCII without spaces", name)
		}
	}
	return nil
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return booking.Errorf(booking.EINVALID, "body is not a valid request: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return booking.Errorf(booking.EINVALID, "body has data after the JSON object")
	}
	return nil
}

// describeJSONError turns a decoding error into a message safe to show: it
// names the field or position, never echoes input values.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var be *booking.Error
	switch {
	case errors.As(err, &be):
		return "a date is not a valid YYYY-MM-DD date"
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed JSON"
}

// readJSONBody checks the content type and reads at most MaxBodyBytes.
// Errors carry unsupported_media_type, body_too_large or invalid_request.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, booking.Errorf(CodeUnsupportedMediaType, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, booking.Errorf(CodeBodyTooLarge, "body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, booking.Errorf(booking.EINVALID, "body could not be read")
	}
	return body, nil
}
