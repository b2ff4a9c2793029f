package booking

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of a supply file.
const (
	// DefaultMaxSupplyRows is the row limit of a SupplyParser whose MaxRows
	// is 0: 14,000 clinics × 30 dates × 4 products fits with room to spare.
	DefaultMaxSupplyRows = 2_000_000
	// MaxSupplyDoses is the most doses one supply row may hold; more is a
	// typo (a clinic gives a few hundred doses a day), not a delivery.
	MaxSupplyDoses = 1_000_000
	// maxClinicIDLen bounds clinic ids in supply files.
	maxClinicIDLen = 64
	// maxListedRows bounds the rows SupplyError.Error prints; Rows holds all.
	maxListedRows = 20
)

// SupplyColumns are the columns of a supply CSV header, in the usual order;
// any order is accepted and dose may be left out (it then means 1).
var SupplyColumns = []string{"clinic_id", "date", "product", "dose", "doses"}

// SupplyRowError is one bad row of a supply file.
type SupplyRowError struct {
	// Line is the 1-based line of the row in a CSV file (the header is line
	// 1; a quoted field may span lines, Line is where the row starts), or
	// the 0-based index of the item in a JSON array. -1 means the JSON file
	// as a whole (not an array, or trailing data).
	Line int
	// Reason says what is wrong, without the file's personal data (supply
	// files have none).
	Reason string
}

// SupplyError reports every bad row of a supply file. Nothing of a file
// with a SupplyError may be applied. Its booking code is EINVALID:
// ErrorCode(err) and errors.Is(err, &Error{Code: EINVALID}) see it.
type SupplyError struct {
	// Format is "csv" or "json".
	Format string
	// Rows lists the bad rows in file order.
	Rows []SupplyRowError
}

func (e *SupplyError) where(line int) string {
	switch {
	case e.Format == "json" && line < 0:
		return "file"
	case e.Format == "json":
		return fmt.Sprintf("item %d", line)
	}
	return fmt.Sprintf("line %d", line)
}

// Error lists the first bad rows and counts the others.
func (e *SupplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "supply %s file has %d bad row(s): ", e.Format, len(e.Rows))
	for i, r := range e.Rows {
		if i == maxListedRows {
			fmt.Fprintf(&b, "; and %d more", len(e.Rows)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", e.where(r.Line), r.Reason)
	}
	return b.String()
}

// Unwrap returns the booking *Error (EINVALID) the HTTP layer maps to 400.
func (e *SupplyError) Unwrap() error {
	return &Error{Code: EINVALID, Message: e.Error()}
}

// SupplyDigest returns the hex SHA-256 of a supply file's bytes: the key
// that makes loading the same file twice apply it once.
func SupplyDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// SupplyDates returns the dates on which a campaign may hold supply of
// dose n of product p: the vaccination dates for dose 1; for a later dose,
// those dates moved by (n−1) intervals, widened by the tolerance on both
// sides, because dose 2 of a dose 1 given on the last vaccination date
// lands after it.
func SupplyDates(c *Campaign, p Product, dose int) (from, to Date) {
	from, to = c.VaccinationFrom, c.VaccinationTo
	if dose < 2 || p.DosesOf() < 2 {
		return from, to
	}
	n := dose - 1
	if f := from.AddDays(n * (p.IntervalDays - p.ToleranceDays)); f.After(from) {
		from = f
	}
	return from, to.AddDays(n * (p.IntervalDays + p.ToleranceDays))
}

// SupplyParser parses and validates supply files for a campaign. The zero
// SupplyParser is ready to use.
type SupplyParser struct {
	// MaxRows is the most rows a file may have; 0 means
	// DefaultMaxSupplyRows. A longer file is refused at the first row over
	// the limit, without reading the rest.
	MaxRows int
}

// ParseSupplyCSV is SupplyParser{}.CSV.
func ParseSupplyCSV(r io.Reader, campaign *Campaign) ([]Supply, error) {
	return SupplyParser{}.CSV(r, campaign)
}

// ParseSupplyJSON is SupplyParser{}.JSON.
func ParseSupplyJSON(r io.Reader, campaign *Campaign) ([]Supply, error) {
	return SupplyParser{}.JSON(r, campaign)
}

// supplyChecker validates rows one by one and remembers the keys seen.
type supplyChecker struct {
	c      *Campaign
	out    []Supply
	bad    []SupplyRowError
	seen   map[supplyKey]int // key → line of its first row
	limit  int
	isJSON bool
}

type supplyKey struct {
	clinic  string
	date    Date
	product string
	dose    int
}

// supplyFields is one row as text; hasDose is false when dose is absent.
type supplyFields struct {
	clinic, date, product, dose, doses string
	hasDose                            bool
}

func newSupplyChecker(c *Campaign, maxRows int) *supplyChecker {
	if maxRows <= 0 {
		maxRows = DefaultMaxSupplyRows
	}
	return &supplyChecker{c: c, seen: map[supplyKey]int{}, limit: maxRows}
}

func (k *supplyChecker) fail(line int, format string, args ...any) {
	k.bad = append(k.bad, SupplyRowError{Line: line, Reason: fmt.Sprintf(format, args...)})
}

// full reports whether rows rows already reach the limit; the caller then
// records one error and stops.
func (k *supplyChecker) full(rows int) bool { return rows >= k.limit }

// check validates one row and keeps it if it is good. Every problem of the
// row is reported, in one reason joined by "; ".
func (k *supplyChecker) check(line int, f supplyFields) {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	keyOK := true

	clinic := strings.TrimSpace(f.clinic)
	switch {
	case clinic == "":
		add("clinic_id is empty")
		keyOK = false
	case len(clinic) > maxClinicIDLen || !utf8.ValidString(clinic):
		add("clinic_id is longer than %d bytes or not UTF-8", maxClinicIDLen)
		keyOK = false
	}

	date, err := ParseDate(strings.TrimSpace(f.date))
	dateOK := err == nil
	if !dateOK {
		add("date %s is not a valid YYYY-MM-DD date", quoteField(f.date))
		keyOK = false
	}

	productID := strings.TrimSpace(f.product)
	product, known := k.c.Product(productID)
	switch {
	case productID == "":
		add("product is empty")
		keyOK = false
	case !known:
		add("unknown product %s for campaign %q", quoteField(productID), k.c.ID)
		keyOK = false
	}

	dose, doseOK := 1, true
	if s := strings.TrimSpace(f.dose); f.hasDose && s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			add("dose %s is not a whole number", quoteField(f.dose))
			doseOK = false
		case known && (n < 1 || n > product.DosesOf()):
			add("dose %d is outside 1..%d for product %q", n, product.DosesOf(), productID)
			doseOK = false
		case n < 1:
			add("dose %d is below 1", n)
			doseOK = false
		}
		dose = n
	}
	keyOK = keyOK && doseOK

	if dateOK {
		from, to := k.c.VaccinationFrom, k.c.VaccinationTo
		if known && doseOK {
			from, to = SupplyDates(k.c, product, dose)
		}
		switch {
		case !date.Before(from) && !date.After(to):
		case from == k.c.VaccinationFrom && to == k.c.VaccinationTo:
			add("date %s is outside the campaign's vaccination dates %s..%s", date, from, to)
			keyOK = false
		default:
			add("date %s is outside the dates for dose %d of %q, %s..%s", date, dose, productID, from, to)
			keyOK = false
		}
	}

	doses, err := strconv.Atoi(strings.TrimSpace(f.doses))
	switch {
	case strings.TrimSpace(f.doses) == "":
		add("doses is empty")
	case err != nil:
		add("doses %s is not a whole number up to %d", quoteField(f.doses), MaxSupplyDoses)
	case doses < 0:
		add("doses %d is negative", doses)
	case doses > MaxSupplyDoses:
		add("doses %d is more than %d", doses, MaxSupplyDoses)
	}

	if keyOK {
		key := supplyKey{clinic, date, productID, dose}
		if first, dup := k.seen[key]; dup {
			add("duplicate of the row at %s for clinic %q, %s, %s, dose %d", (&SupplyError{Format: k.format()}).where(first), clinic, date, productID, dose)
		} else {
			k.seen[key] = line
		}
	}
	if len(probs) > 0 {
		k.fail(line, "%s", strings.Join(probs, "; "))
		return
	}
	if len(k.bad) == 0 { // once a row is bad nothing is returned; save the memory
		k.out = append(k.out, Supply{CampaignID: k.c.ID, ClinicID: clinic, Date: date, Product: productID, Dose: dose, Doses: doses, Line: line})
	}
}

// format is set by the parser so duplicate reasons name lines or items.
func (k *supplyChecker) format() string {
	if k.isJSON {
		return "json"
	}
	return "csv"
}

// result returns the rows, or a *SupplyError if any row was bad.
func (k *supplyChecker) result() ([]Supply, error) {
	if len(k.bad) > 0 {
		return nil, &SupplyError{Format: k.format(), Rows: k.bad}
	}
	return k.out, nil
}

// quoteField quotes a field for a reason, cut to 40 bytes.
func quoteField(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// CSV reads a supply CSV: a header naming the columns clinic_id, date,
// product, doses and optionally dose (any order; a UTF-8 byte order mark
// is ignored), then one row per clinic × date × product × dose. Fields are
// trimmed of spaces; a missing or empty dose means 1.
//
// It returns EINVALID as a *SupplyError listing every bad row with its
// line: a bad header (missing, unknown or repeated columns), a row with the
// wrong number of fields or broken quoting, a bad date or one outside
// SupplyDates (the vaccination dates; for dose 2 an interval later), a
// product the campaign does not offer, a dose outside 1..the product's
// doses, doses that are not a whole number in 0..MaxSupplyDoses, a row
// repeating an earlier (clinic, date, product, dose), or more than MaxRows
// rows. A file with no rows is refused too. Read errors are returned
// wrapped as they are. Whether the clinics exist is for the loader.
func (p SupplyParser) CSV(r io.Reader, campaign *Campaign) ([]Supply, error) {
	if campaign == nil {
		return nil, Errorf(EINVALID, "campaign is missing")
	}
	k := newSupplyChecker(campaign, p.MaxRows)
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, so the row is reported and reading goes on
	cr.ReuseRecord = true

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		k.fail(1, "the file is empty; the first line must be the header %s", strings.Join(SupplyColumns, ","))
		return k.result()
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return nil, fmt.Errorf("read supply csv header: %w", err)
		}
		k.fail(1, "header: %v", pe.Err)
		return k.result()
	}
	col, probs := supplyHeader(header)
	if len(probs) > 0 {
		k.fail(1, "header: %s", strings.Join(probs, "; "))
		return k.result()
	}

	fields := len(header) // header's backing array is reused by Read
	rows := 0
	for ; ; rows++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return nil, fmt.Errorf("read supply csv: %w", err)
		}
		line := 0
		if pe != nil {
			line = pe.StartLine
		} else {
			line, _ = cr.FieldPos(0)
		}
		switch {
		case k.full(rows):
			k.fail(line, "the file has more than %d rows", k.limit)
			return k.result()
		case pe != nil:
			k.fail(line, "%v", pe.Err)
			continue
		case len(rec) != fields:
			k.fail(line, "the row has %d fields, the header %d", len(rec), fields)
			continue
		}
		f := supplyFields{clinic: rec[col["clinic_id"]], date: rec[col["date"]], product: rec[col["product"]], doses: rec[col["doses"]]}
		if i, ok := col["dose"]; ok {
			f.dose, f.hasDose = rec[i], true
		}
		k.check(line, f)
	}
	if rows == 0 && len(k.bad) == 0 {
		k.fail(1, "the file has a header but no rows")
	}
	return k.result()
}

// supplyHeader maps column names to positions and lists what is wrong.
func supplyHeader(header []string) (map[string]int, []string) {
	col := map[string]int{}
	var probs []string
	known := map[string]bool{}
	for _, c := range SupplyColumns {
		known[c] = true
	}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		h = strings.TrimSpace(h)
		switch _, dup := col[h]; {
		case !known[h]:
			probs = append(probs, fmt.Sprintf("unknown column %s", quoteField(h)))
		case dup:
			probs = append(probs, fmt.Sprintf("column %q appears twice", h))
		default:
			col[h] = i
		}
	}
	for _, c := range SupplyColumns {
		if _, ok := col[c]; !ok && c != "dose" {
			probs = append(probs, fmt.Sprintf("missing column %q", c))
		}
	}
	return col, probs
}

// JSON reads a supply JSON file: an array of objects with the fields
// clinic_id, date, product (strings), doses and optionally dose (whole
// numbers; a missing or null dose means 1). It returns EINVALID as a
// *SupplyError listing every bad item by array index, for the same reasons
// as CSV plus unknown, missing, repeated or mistyped fields and items that
// are not objects. Malformed JSON stops the reading at that point.
func (p SupplyParser) JSON(r io.Reader, campaign *Campaign) ([]Supply, error) {
	if campaign == nil {
		return nil, Errorf(EINVALID, "campaign is missing")
	}
	k := newSupplyChecker(campaign, p.MaxRows)
	k.isJSON = true
	dec := json.NewDecoder(r)
	malformed := func(item int, err error) ([]Supply, error) {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF) && item < 0:
			k.fail(item, "the file is empty; it must be a JSON array of supply rows")
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			k.fail(item, "malformed JSON near byte %d: %v", dec.InputOffset(), err)
		default:
			return nil, fmt.Errorf("read supply json: %w", err)
		}
		return k.result()
	}

	tok, err := dec.Token()
	if err != nil {
		return malformed(-1, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		k.fail(-1, "the file is not a JSON array of supply rows")
		return k.result()
	}
	item := 0
	for ; dec.More(); item++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return malformed(item, err)
		}
		if k.full(item) {
			k.fail(item, "the file has more than %d rows", k.limit)
			return k.result()
		}
		f, probs := supplyObject(raw)
		if len(probs) > 0 {
			k.fail(item, "%s", strings.Join(probs, "; "))
			continue
		}
		k.check(item, f)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return malformed(item, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		k.fail(-1, "data after the closing ] of the array")
		return k.result()
	}
	if item == 0 && len(k.bad) == 0 {
		k.fail(-1, "the array has no rows")
	}
	return k.result()
}

// supplyObject reads one JSON item into text fields, the numbers kept as
// their literal so that 1.5, 1e2 and "100" are refused like in CSV.
func supplyObject(raw json.RawMessage) (supplyFields, []string) {
	var f supplyFields
	var probs []string
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return f, []string{"the item is not an object"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return f, []string{"the item is not an object"}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f, []string{"the item is not an object"}
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return f, []string{"the item is not an object"}
		}
		if seen[name] {
			probs = append(probs, fmt.Sprintf("field %q appears twice", name))
			continue
		}
		seen[name] = true
		str := func(dst *string) {
			s, ok := v.(string)
			if !ok {
				probs = append(probs, fmt.Sprintf("%s must be a string", name))
			}
			*dst = s
		}
		num := func(dst *string) {
			n, ok := v.(json.Number)
			if !ok {
				probs = append(probs, fmt.Sprintf("%s must be a whole number", name))
				*dst = "x"
				return
			}
			*dst = n.String()
		}
		switch name {
		case "clinic_id":
			str(&f.clinic)
		case "date":
			str(&f.date)
		case "product":
			str(&f.product)
		case "doses":
			num(&f.doses)
		case "dose":
			if v != nil {
				num(&f.dose)
				f.hasDose = true
			}
		default:
			probs = append(probs, fmt.Sprintf("unknown field %s", quoteField(name)))
		}
	}
	for _, c := range SupplyColumns {
		if !seen[c] && c != "dose" {
			probs = append(probs, fmt.Sprintf("missing field %q", c))
		}
	}
	return f, probs
}
