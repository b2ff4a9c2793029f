package booking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"path"
	"slices"
	"strings"
	"time"
)

// SupplyFormat is the format of a supply file.
type SupplyFormat string

const (
	// SupplyCSV is a CSV file with a header (see SupplyParser.CSV).
	SupplyCSV SupplyFormat = "csv"
	// SupplyJSON is a JSON array of rows (see SupplyParser.JSON).
	SupplyJSON SupplyFormat = "json"
)

// SupplyFormatOf tells the format from a file name ("supply.csv"), a
// media type ("text/csv", "application/json; charset=utf-8") or the format
// name itself ("csv", "json"). It returns EINVALID for anything else.
func SupplyFormatOf(nameOrType string) (SupplyFormat, error) {
	s := strings.ToLower(strings.TrimSpace(nameOrType))
	if mt, _, err := mime.ParseMediaType(s); err == nil && strings.Contains(mt, "/") {
		s = mt
	}
	switch s {
	case "csv", "text/csv", "application/csv":
		return SupplyCSV, nil
	case "json", "application/json":
		return SupplyJSON, nil
	}
	switch path.Ext(s) {
	case ".csv":
		return SupplyCSV, nil
	case ".json":
		return SupplyJSON, nil
	}
	return "", Errorf(EINVALID, "supply files are CSV or JSON, not %q", nameOrType)
}

// SupplyLoad is one validated supply file for SupplyStore.ApplySupply.
type SupplyLoad struct {
	// Campaign the rows belong to (its waves and products decide the split).
	Campaign *Campaign
	// Digest is SupplyDigest of the file's bytes: the same digest is applied
	// once per campaign.
	Digest string
	// Rows are the file's rows, each naming a distinct clinic × date ×
	// product × dose. A row sets that supply to Doses (not adds to it);
	// supply the file does not name is left as it is.
	Rows []Supply
	// At is recorded as the time the file was applied.
	At time.Time
}

// SupplyResult says what loading a supply file did.
type SupplyResult struct {
	CampaignID string
	Digest     string
	// AlreadyApplied is true when a file with this digest was applied to
	// the campaign before: nothing changed now, and AppliedAt, Rows,
	// QuotaRows and Doses describe that first load.
	AlreadyApplied bool
	AppliedAt      time.Time
	// Rows is the number of supply rows in the file.
	Rows int
	// QuotaRows is the number of quota rows inserted or changed.
	QuotaRows int
	// Doses is the sum of the file's doses.
	Doses int64
}

// SupplyConflict is one supply row that would leave fewer doses than are
// already booked on its clinic × date × product × dose.
type SupplyConflict struct {
	// Line is the row's place in its file (see Supply.Line).
	Line     int    `json:"line"`
	ClinicID string `json:"clinic_id"`
	Date     Date   `json:"date"`
	Product  string `json:"product"`
	Dose     int    `json:"dose"`
	// Doses is the supply the file asks for.
	Doses int `json:"doses"`
	// Booked is what the active bookings hold now, over all waves.
	Booked int `json:"booked"`
}

// SupplyConflictError refuses a supply file that would reduce supply
// below what is booked. Nothing of the file is applied. Its booking code
// is ECONFLICT: ErrorCode(err) sees it; errors.As gives the rows so an API
// can return them.
type SupplyConflictError struct {
	// Conflicts lists every refused row, in file order.
	Conflicts []SupplyConflict
	// AffectedBookings is the number of active bookings on the refused
	// rows: the bookings the reduction would touch.
	AffectedBookings int
	// Excess is how many of them the new supply could not hold
	// (Σ Booked − Doses): the bookings that would have to be cancelled.
	Excess int
}

// Error names the first conflicts and counts the bookings.
func (e *SupplyConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "supply below what is booked on %d row(s), %d active booking(s) affected, %d over the new supply: ",
		len(e.Conflicts), e.AffectedBookings, e.Excess)
	for i, c := range e.Conflicts {
		if i == maxListedRows {
			fmt.Fprintf(&b, "; and %d more", len(e.Conflicts)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "clinic %s %s %s dose %d: %d doses, %d booked", c.ClinicID, c.Date, c.Product, c.Dose, c.Doses, c.Booked)
	}
	return b.String()
}

// Unwrap returns the booking *Error (ECONFLICT) the API maps to 409.
func (e *SupplyConflictError) Unwrap() error {
	return &Error{Code: ECONFLICT, Message: e.Error()}
}

// NewSupplyConflictError returns the error for the given conflicts, with
// AffectedBookings and Excess totalled; for SupplyStore implementations.
func NewSupplyConflictError(conflicts []SupplyConflict) *SupplyConflictError {
	e := &SupplyConflictError{Conflicts: conflicts}
	for _, c := range conflicts {
		e.AffectedBookings += c.Booked
		e.Excess += c.Booked - c.Doses
	}
	return e
}

// SupplyStore is what a SupplyLoader needs; *sqlstore.DB implements it.
type SupplyStore interface {
	// Campaign returns ENOTFOUND if the campaign does not exist.
	Campaign(ctx context.Context, id string) (*Campaign, error)
	// Clinics lists all clinics.
	Clinics(ctx context.Context) ([]Clinic, error)
	// ApplySupply applies a validated supply file in one transaction:
	// every row's quota rows get the capacities Redistribute gives (from
	// what each wave has booked and which waves have rolled over), and the
	// digest is recorded. A digest already recorded for the campaign
	// changes nothing and returns AlreadyApplied. Returns a
	// *SupplyConflictError (ECONFLICT), changing nothing, listing every
	// row whose new supply is below what is booked; EINVALID for rows
	// that are not distinct or not of the campaign.
	ApplySupply(ctx context.Context, load SupplyLoad) (SupplyResult, error)
}

// SupplyLoaderConfig configures a SupplyLoader. Store is required.
type SupplyLoaderConfig struct {
	// Store reads the campaign and clinics and applies the file.
	Store SupplyStore
	// MaxRows bounds a file's rows; 0 means DefaultMaxSupplyRows.
	MaxRows int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per load; nil means slog.Default().
	Logger *slog.Logger
}

// SupplyLoader loads supply files (POST /ops/supply, `yeyakd supply load
// FILE`): it parses and validates every row, then applies the whole file
// in one transaction, once per file digest.
//
//	l, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: db})
//	res, err := l.Load(ctx, campaignID, booking.SupplyCSV, data)
//	var bad *booking.SupplyError          // EINVALID: rows with line numbers
//	var short *booking.SupplyConflictError // ECONFLICT: reductions below booked
//	switch {
//	case errors.As(err, &bad), errors.As(err, &short):
//	case res.AlreadyApplied: // the same file was loaded before; nothing changed
//	}
type SupplyLoader struct {
	store  SupplyStore
	parser SupplyParser
	now    func() time.Time
	log    *slog.Logger
}

// NewSupplyLoader returns a SupplyLoader, or an error if Store is missing.
func NewSupplyLoader(cfg SupplyLoaderConfig) (*SupplyLoader, error) {
	if cfg.Store == nil {
		return nil, errors.New("booking: NewSupplyLoader: Store is required")
	}
	l := &SupplyLoader{store: cfg.Store, parser: SupplyParser{MaxRows: cfg.MaxRows}, now: cfg.Now, log: cfg.Logger}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l, nil
}

// Load parses data as a supply file of the given format for campaignID,
// checks every row (SupplyParser's checks, plus: the clinic exists and
// administers the product) and applies the file in one transaction (see
// SupplyStore.ApplySupply), keyed by SupplyDigest(data).
//
// Returns EINVALID as a *SupplyError listing every bad row with its line,
// nothing applied; ENOTFOUND for an unknown campaign; ECONFLICT as a
// *SupplyConflictError when the file would reduce supply below what is
// booked, nothing applied. Loading a file already applied to the campaign
// changes nothing and returns a result with AlreadyApplied set.
func (l *SupplyLoader) Load(ctx context.Context, campaignID string, format SupplyFormat, data []byte) (SupplyResult, error) {
	if strings.TrimSpace(campaignID) == "" {
		return SupplyResult{}, Errorf(EINVALID, "campaign id is empty")
	}
	c, err := l.store.Campaign(ctx, campaignID)
	if err != nil {
		return SupplyResult{}, fmt.Errorf("get campaign %s: %w", campaignID, err)
	}
	var rows []Supply
	switch format {
	case SupplyCSV:
		rows, err = l.parser.CSV(bytes.NewReader(data), c)
	case SupplyJSON:
		rows, err = l.parser.JSON(bytes.NewReader(data), c)
	default:
		return SupplyResult{}, Errorf(EINVALID, "supply files are CSV or JSON, not %q", format)
	}
	if err != nil {
		return SupplyResult{}, err
	}
	if err := l.checkClinics(ctx, format, rows); err != nil {
		return SupplyResult{}, err
	}
	start := l.now()
	res, err := l.store.ApplySupply(ctx, SupplyLoad{Campaign: c, Digest: SupplyDigest(data), Rows: rows, At: start})
	if err != nil {
		var ce *SupplyConflictError
		if errors.As(err, &ce) {
			l.log.WarnContext(ctx, "supply refused: below booked", "campaign_id", c.ID, "conflicts", len(ce.Conflicts),
				"affected_bookings", ce.AffectedBookings)
		}
		return SupplyResult{}, fmt.Errorf("apply supply: %w", err)
	}
	l.log.InfoContext(ctx, "supply loaded", "campaign_id", c.ID, "digest", res.Digest, "already_applied", res.AlreadyApplied,
		"rows", res.Rows, "quota_rows", res.QuotaRows, "doses", res.Doses, "duration", time.Since(start))
	return res, nil
}

// checkClinics refuses rows naming a clinic that does not exist or does
// not administer the product, as a *SupplyError with every such row.
func (l *SupplyLoader) checkClinics(ctx context.Context, format SupplyFormat, rows []Supply) error {
	clinics, err := l.store.Clinics(ctx)
	if err != nil {
		return fmt.Errorf("list clinics: %w", err)
	}
	products := make(map[string][]string, len(clinics))
	for _, cl := range clinics {
		products[cl.ID] = cl.Products
	}
	var bad []SupplyRowError
	for _, r := range rows {
		ps, ok := products[r.ClinicID]
		switch {
		case !ok:
			bad = append(bad, SupplyRowError{Line: r.Line, Reason: fmt.Sprintf("unknown clinic %s", quoteField(r.ClinicID))})
		case !slices.Contains(ps, r.Product):
			bad = append(bad, SupplyRowError{Line: r.Line, Reason: fmt.Sprintf("clinic %s does not administer %q", quoteField(r.ClinicID), r.Product)})
		}
	}
	if len(bad) > 0 {
		return &SupplyError{Format: string(format), Rows: bad}
	}
	return nil
}
