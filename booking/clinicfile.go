package booking

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// ClinicColumns are the columns of a clinic CSV header; any order is
// accepted. products lists product ids separated by ";".
var ClinicColumns = []string{"id", "name", "region", "lat", "lon", "products"}

// MaxClinics bounds a clinic file (the country has about 14,000).
const MaxClinics = 100_000

var (
	clinicIDPattern = regexp.MustCompile(`^[!-~]{1,64}$`)
	regionPattern   = regexp.MustCompile(`^[0-9]{2}(-[0-9]{3})?$`)
)

// Validate checks a clinic: an id of 1–64 printable ASCII characters, a
// name, a region code like "11-110" (시도-시군구), coordinates on the
// globe, and at least one product, none repeated.
func (c Clinic) Validate() error {
	var probs []string
	if !clinicIDPattern.MatchString(c.ID) {
		probs = append(probs, "id must be 1-64 printable ASCII characters without spaces")
	}
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		probs = append(probs, "name is required (at most 200 bytes)")
	}
	if !regionPattern.MatchString(c.Region) {
		probs = append(probs, fmt.Sprintf("region %q must look like 11-110", c.Region))
	}
	if !(c.Lat >= -90 && c.Lat <= 90) || !(c.Lon >= -180 && c.Lon <= 180) || math.IsNaN(c.Lat+c.Lon) {
		probs = append(probs, "lat/lon must be on the globe")
	}
	if len(c.Products) == 0 {
		probs = append(probs, "at least one product is required")
	}
	seen := map[string]bool{}
	for _, p := range c.Products {
		if !clinicIDPattern.MatchString(p) || seen[p] {
			probs = append(probs, fmt.Sprintf("product %q is malformed or repeated", p))
		}
		seen[p] = true
	}
	if len(probs) > 0 {
		return Errorf(EINVALID, "%s", strings.Join(probs, "; "))
	}
	return nil
}

// ParseClinics reads a clinic file, CSV (a header of ClinicColumns, then
// one clinic per row) or JSON (an array of Clinic), and validates every
// clinic. Returns EINVALID as a *SupplyError-like *ClinicFileError listing
// every bad row with its line (CSV) or index (JSON); a clinic id may
// appear once.
func ParseClinics(r io.Reader, format SupplyFormat) ([]Clinic, error) {
	data, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read clinic file: %w", err)
	}
	var out []Clinic
	var lines []int
	bad := &ClinicFileError{}
	switch format {
	case SupplyJSON:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			return nil, &ClinicFileError{Rows: []SupplyRowError{{Line: -1, Reason: "not a JSON array of clinics: " + err.Error()}}}
		}
		if dec.More() {
			return nil, &ClinicFileError{Rows: []SupplyRowError{{Line: -1, Reason: "data after the JSON array"}}}
		}
		for i := range out {
			lines = append(lines, i)
		}
	case SupplyCSV:
		cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
		cr.FieldsPerRecord = -1
		header, err := cr.Read()
		if err != nil {
			return nil, &ClinicFileError{Rows: []SupplyRowError{{Line: 1, Reason: "the first line must be the header " + strings.Join(ClinicColumns, ",")}}}
		}
		col := map[string]int{}
		for i, h := range header {
			col[strings.TrimSpace(h)] = i
		}
		for _, c := range ClinicColumns {
			if _, ok := col[c]; !ok || len(col) != len(ClinicColumns) {
				return nil, &ClinicFileError{Rows: []SupplyRowError{{Line: 1, Reason: "header must name exactly " + strings.Join(ClinicColumns, ",")}}}
			}
		}
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			line, _ := cr.FieldPos(0)
			if err != nil {
				bad.Rows = append(bad.Rows, SupplyRowError{Line: line, Reason: "malformed CSV row"})
				continue
			}
			if len(rec) != len(header) {
				bad.Rows = append(bad.Rows, SupplyRowError{Line: line, Reason: fmt.Sprintf("%d fields, want %d", len(rec), len(header))})
				continue
			}
			f := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
			c := Clinic{ID: f("id"), Name: f("name"), Region: f("region")}
			var e1, e2 error
			c.Lat, e1 = strconv.ParseFloat(f("lat"), 64)
			c.Lon, e2 = strconv.ParseFloat(f("lon"), 64)
			if e1 != nil || e2 != nil {
				c.Lat = math.NaN()
			}
			for p := range strings.SplitSeq(f("products"), ";") {
				if p = strings.TrimSpace(p); p != "" {
					c.Products = append(c.Products, p)
				}
			}
			out = append(out, c)
			lines = append(lines, line)
		}
	default:
		return nil, Errorf(EINVALID, "clinic files are CSV or JSON, not %q", format)
	}
	if len(out)+len(bad.Rows) > MaxClinics {
		return nil, Errorf(EINVALID, "a clinic file holds at most %d clinics", MaxClinics)
	}
	seen := make(map[string]int, len(out))
	for i, c := range out {
		if err := c.Validate(); err != nil {
			bad.Rows = append(bad.Rows, SupplyRowError{Line: lines[i], Reason: ErrorMessage(err)})
			continue
		}
		if first, dup := seen[c.ID]; dup {
			bad.Rows = append(bad.Rows, SupplyRowError{Line: lines[i], Reason: fmt.Sprintf("clinic %s is listed again (first at %d)", c.ID, first)})
			continue
		}
		seen[c.ID] = lines[i]
	}
	if len(bad.Rows) > 0 {
		return nil, bad
	}
	if len(out) == 0 {
		return nil, Errorf(EINVALID, "the clinic file holds no clinic")
	}
	return out, nil
}

// ClinicFileError lists every bad row of a clinic file (code EINVALID);
// nothing of such a file may be applied.
type ClinicFileError struct {
	Rows []SupplyRowError
}

func (e *ClinicFileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clinic file has %d bad row(s)", len(e.Rows))
	for i, r := range e.Rows {
		if i == maxListedRows {
			fmt.Fprintf(&b, "; and %d more", len(e.Rows)-i)
			break
		}
		fmt.Fprintf(&b, "; %d: %s", r.Line, r.Reason)
	}
	return b.String()
}

// Unwrap returns the booking *Error (EINVALID).
func (e *ClinicFileError) Unwrap() error { return &Error{Code: EINVALID, Message: e.Error()} }
