package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
)

// Seed is the initial load of one campaign for SeedCampaign: the campaign,
// its clinics and its first supply.
type Seed struct {
	// Campaign is stored as PutCampaign stores it; its waves and products
	// decide how Supply is split. Required.
	Campaign *booking.Campaign
	// Clinics are stored as PutClinics stores them: inserted, or replaced
	// when they exist (clinics are shared by campaigns); a clinic listed
	// twice takes its last entry. Empty when they are stored already.
	Clinics []booking.Clinic
	// Supply rows of Campaign, each naming a distinct clinic × date ×
	// product × dose, become quota rows split as booking.SplitSupply splits
	// them (and as ApplySupply would on an empty campaign). Required.
	Supply []booking.Supply
	// Digest, when set, is recorded as an applied supply file
	// (booking.SupplyDigest of the file the rows came from), as ApplySupply
	// records it, so applying that file later changes nothing. Empty for
	// generated supply: nothing is recorded.
	Digest string
	// At is the time recorded with Digest; zero means now.
	At time.Time
}

// SeedResult says what SeedCampaign loaded.
type SeedResult struct {
	// Clinics is the number of clinics stored (duplicates removed).
	Clinics int
	// SupplyRows is len(Seed.Supply).
	SupplyRows int
	// QuotaRows is the number of quota rows inserted.
	QuotaRows int
	// Doses is the sum of the supply rows' doses.
	Doses int64
	// Version is the quota version every inserted row carries:
	// QuotasChangedSince from any version below it returns them.
	Version int64
}

// SeedCampaign loads a campaign that has no quota rows yet — the campaign,
// its clinics and its whole first supply — in one transaction, in bulk: on
// PostgreSQL by a binary COPY on one pool connection, on SQLite by one
// prepared multi-row INSERT run over the rows. It is the seeding path for
// the demo, benchmarks and a first national load, where ApplySupply's
// per-row locking and reconciling (a supply file over a live campaign) would
// cost minutes for millions of rows; it is not a replacement for
// ApplySupply, which every later supply file goes through.
//
// It refuses with ECONFLICT, writing nothing, when the campaign already has
// a quota row (or one is written concurrently: the load only inserts, so it
// never touches a booked dose), and with EINVALID when the seed is not
// valid: no campaign or supply, a supply row that ApplySupply would refuse,
// or a clinic × date × product × dose listed twice.
//
// Every inserted row carries one new quota version, drawn as the booking
// path draws them (quota_version_seq while holding the quotas table's
// write lock on PostgreSQL; MAX(version)+1 in the serialized write
// transaction on SQLite), so in-memory quota snapshots following
// QuotasChangedSince pick the rows up on their next poll. Rows go in in
// key order, which keeps index inserts at the right edge of the primary
// key. On PostgreSQL the safe version QuotasChangedSince returns waits for
// the load to end, as for any long write to quotas (versionWatermark), so
// snapshots of other campaigns re-read what changes meanwhile: seed
// outside booking windows.
//
// What it costs: 14,000 clinics × 30 dates × their products (1.5 on
// average) × 12 rows (11 dose-1 waves and the dose-2 pool) is 7.5 million
// rows; the PostgreSQL backend spends 5–6 µs of CPU per row on the 2-core
// test machine (primary key 3.4, version index 1.9, heap 1), 39–50 s in
// all, most of it in B-tree inserts into the six-column primary key, plus
// waits for WAL flushes (BenchmarkSeed1M in mocks/population).
//
// A first load of a live campaign may not be empty by the time it runs;
// then the refusal says to use ApplySupply:
//
//	res, err := db.SeedCampaign(ctx, sqlstore.Seed{Campaign: c, Clinics: clinics, Supply: supply})
//	if booking.ErrorCode(err) == booking.ECONFLICT {
//		// the campaign has quota rows: load the file with ApplySupply
//	}
func (db *DB) SeedCampaign(ctx context.Context, s Seed) (SeedResult, error) {
	p, err := prepareSeed(s)
	if err != nil {
		return SeedResult{}, err
	}
	if db.dialect != Postgres {
		if err := db.inTx(ctx, "seed campaign", func(tx *sqlx.Tx) error { return db.seedSQLite(ctx, tx, p) }); err != nil {
			return SeedResult{}, err
		}
		return p.res, nil
	}
	if err := db.seedPostgres(ctx, p); err != nil {
		var be *booking.Error
		if errors.As(err, &be) {
			return SeedResult{}, err
		}
		return SeedResult{}, fmt.Errorf("sqlstore: seed campaign: %w", err)
	}
	return p.res, nil
}

// seedPlan is a validated Seed, ready to write.
type seedPlan struct {
	c        *booking.Campaign
	body     string // the campaign as JSON
	clinics  []booking.Clinic
	products []string // clinics' products as JSON, by index
	supply   []booking.Supply
	digest   string
	at       time.Time
	res      SeedResult
}

// prepareSeed validates s and puts its clinics and supply in key order.
// s's slices are not changed.
func prepareSeed(s Seed) (*seedPlan, error) {
	c := s.Campaign
	if c == nil || c.ID == "" || len(s.Supply) == 0 {
		return nil, booking.Errorf(booking.EINVALID, "a seed needs a campaign with an id and supply rows")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, booking.Errorf(booking.EINVALID, "campaign cannot be encoded: %v", err)
	}
	p := &seedPlan{c: c, body: string(body), digest: s.Digest, at: s.At}
	if p.at.IsZero() {
		p.at = time.Now()
	}

	byID := make(map[string]int, len(s.Clinics))
	for _, cl := range s.Clinics {
		if cl.ID == "" {
			return nil, booking.Errorf(booking.EINVALID, "clinic needs an id")
		}
		if i, ok := byID[cl.ID]; ok {
			p.clinics[i] = cl
			continue
		}
		byID[cl.ID] = len(p.clinics)
		p.clinics = append(p.clinics, cl)
	}
	slices.SortFunc(p.clinics, func(a, b booking.Clinic) int { return strings.Compare(a.ID, b.ID) })
	p.products = make([]string, len(p.clinics))
	for i, cl := range p.clinics {
		products := cl.Products
		if products == nil {
			products = []string{}
		}
		b, err := json.Marshal(products)
		if err != nil {
			return nil, booking.Errorf(booking.EINVALID, "clinic %s products cannot be encoded: %v", cl.ID, err)
		}
		p.products[i] = string(b)
	}

	waves := c.Waves()
	for _, r := range s.Supply {
		pr, ok := c.Product(r.Product)
		switch {
		case r.CampaignID != "" && r.CampaignID != c.ID:
			return nil, booking.Errorf(booking.EINVALID, "supply row of campaign %q in a seed of %q", r.CampaignID, c.ID)
		case r.ClinicID == "" || r.Date.IsZero() || !ok || r.Dose < 1 || r.Dose > pr.DosesOf() || r.Doses < 0 || r.Doses > booking.MaxSupplyDoses:
			return nil, booking.Errorf(booking.EINVALID, "supply row %+v is not valid for campaign %q", r, c.ID)
		}
		p.res.Doses += int64(r.Doses)
		if r.Dose >= 2 {
			p.res.QuotaRows++
		} else {
			p.res.QuotaRows += waves
		}
	}
	p.supply = slices.Clone(s.Supply)
	slices.SortFunc(p.supply, compareSupply)
	for i := 1; i < len(p.supply); i++ {
		if a := p.supply[i]; compareSupply(p.supply[i-1], a) == 0 {
			return nil, booking.Errorf(booking.EINVALID, "supply for clinic %s on %s (%s dose %d) is listed twice", a.ClinicID, a.Date, a.Product, a.Dose)
		}
	}
	p.res.Clinics, p.res.SupplyRows = len(p.clinics), len(p.supply)
	return p, nil
}

// compareSupply orders supply rows as the quota primary key orders their
// rows: clinic, date, product, dose.
func compareSupply(a, b booking.Supply) int {
	return cmp.Or(
		strings.Compare(a.ClinicID, b.ClinicID),
		a.Date.Compare(b.Date),
		strings.Compare(a.Product, b.Product),
		cmp.Compare(a.Dose, b.Dose),
	)
}

// quotaCursor walks a seed's quota rows in key order, computing each
// supply row's waves when it gets to it.
type quotaCursor struct {
	c      *booking.Campaign
	supply []booking.Supply
	next   int   // next supply row
	caps   []int // capacities of the current supply row's waves
	wave   int   // current wave of caps
	row    *booking.Supply
	// first is true on the first wave of a supply row: the row's clinic,
	// date, product and dose changed.
	first bool
}

func newQuotaCursor(p *seedPlan) *quotaCursor {
	return &quotaCursor{c: p.c, supply: p.supply}
}

// advance moves to the next quota row; false at the end.
func (q *quotaCursor) advance() bool {
	q.wave++
	q.first = false
	for q.wave >= len(q.caps) {
		if q.next >= len(q.supply) {
			return false
		}
		q.row = &q.supply[q.next]
		q.next++
		// With nothing booked and nothing rolled over, Redistribute is
		// SplitSupply's split (as ApplySupply computes it), without a Quota
		// per wave.
		q.caps, _ = booking.Redistribute(q.c, *q.row, nil, nil)
		q.wave, q.first = 0, true
	}
	return true
}

// SQL of the seeding path. sqlSeedHasQuotas finds whether the campaign has
// any quota row; sqlSeedQuotaRow is one row of sqlSeedQuotas, a plain
// INSERT: a row that exists is an error, never overwritten.
const (
	sqlSeedHasQuotas = `SELECT COUNT(*) FROM (SELECT 1 FROM quotas WHERE campaign_id = ? LIMIT 1) AS q`
	sqlSeedLockPG    = `LOCK TABLE quotas IN ROW EXCLUSIVE MODE`
	sqlSeedVersionPG = `SELECT nextval('quota_version_seq')`
	sqlSeedQuotas    = `INSERT INTO quotas (campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version)
		VALUES {{values}}`
	sqlSeedQuotaRow   = `(?, ?, ?, ?, ?, ?, ?, 0, ?)`
	sqlSeedSupplyLoad = `INSERT INTO supply_loads (campaign_id, digest, applied_at, row_count, quota_rows, doses)
		VALUES (?, ?, ?, ?, ?, ?)`
)

// seedQuotaColumns are the quota columns COPY fills.
var seedQuotaColumns = []string{"campaign_id", "clinic_id", "vdate", "product", "dose", "wave", "capacity", "booked", "version"}

// seedSQLiteRows is how many rows one SQLite INSERT of the seed carries
// (8 parameters a row, far below SQLite's 32,766).
const seedSQLiteRows = 256

// refuseNonEmpty is the ECONFLICT of a campaign that has quota rows.
func refuseNonEmpty(campaignID string) error {
	return booking.Errorf(booking.ECONFLICT, "campaign %q already has quota rows: a seed loads an empty campaign only; load supply files with ApplySupply", campaignID)
}

// seedSQLite writes p in tx (the store's serialized write transaction).
func (db *DB) seedSQLite(ctx context.Context, tx *sqlx.Tx, p *seedPlan) error {
	var has int
	if err := tx.QueryRowxContext(ctx, db.dialect.Rebind(sqlSeedHasQuotas), p.c.ID).Scan(&has); err != nil {
		return fmt.Errorf("check quotas: %w", err)
	}
	if has > 0 {
		return refuseNonEmpty(p.c.ID)
	}
	if err := db.seedCampaignAndClinics(func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}, p); err != nil {
		return err
	}
	if err := tx.QueryRowxContext(ctx, sqlNextVersionArg).Scan(&p.res.Version); err != nil {
		return fmt.Errorf("next quota version: %w", err)
	}

	stmts := map[int]*sql.Stmt{} // by rows per statement: the full size and the last batch
	defer func() {
		for _, st := range stmts {
			_ = st.Close()
		}
	}()
	args := make([]any, 0, 8*seedSQLiteRows)
	n, written := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		st, ok := stmts[n]
		if !ok {
			var err error
			if st, err = tx.PrepareContext(ctx, db.dialect.bulkSQL(sqlSeedQuotas, sqlSeedQuotaRow, n)); err != nil {
				return fmt.Errorf("prepare quota inserts: %w", err)
			}
			stmts[n] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert quotas of clinic %s: %w", args[1], err)
		}
		written += n
		args, n = args[:0], 0
		return nil
	}
	var campaign, clinic, date, product, dose any = p.c.ID, nil, nil, nil, nil
	for q := newQuotaCursor(p); q.advance(); {
		if q.first {
			clinic, date, product, dose = q.row.ClinicID, q.row.Date.String(), q.row.Product, q.row.Dose
		}
		args = append(args, campaign, clinic, date, product, dose, q.wave, q.caps[q.wave], p.res.Version)
		if n++; n == seedSQLiteRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if written != p.res.QuotaRows {
		return fmt.Errorf("inserted %d quota rows, planned %d", written, p.res.QuotaRows)
	}
	return db.seedSupplyLoad(func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}, p)
}

// seedCampaignAndClinics stores the campaign and the clinics with the
// statements PutCampaign and PutClinics use, through exec.
func (db *DB) seedCampaignAndClinics(exec func(q string, args ...any) error, p *seedPlan) error {
	now := db.dialect.timeArg(time.Now())
	if err := exec(db.q.putCampaign, p.c.ID, p.body, now); err != nil {
		return fmt.Errorf("store campaign: %w", err)
	}
	for start := 0; start < len(p.clinics); start += bulkRows {
		batch := p.clinics[start:min(start+bulkRows, len(p.clinics))]
		args := make([]any, 0, 7*len(batch))
		for i, c := range batch {
			args = append(args, c.ID, c.Name, c.Region, c.Lat, c.Lon, p.products[start+i], now)
		}
		if err := exec(db.dialect.bulkSQL(sqlPutClinics, sqlClinicRow, len(batch)), args...); err != nil {
			return fmt.Errorf("store clinics %s…: %w", batch[0].ID, err)
		}
	}
	return nil
}

// seedSupplyLoad records p's digest, if any, as an applied supply file.
func (db *DB) seedSupplyLoad(exec func(q string, args ...any) error, p *seedPlan) error {
	if p.digest == "" {
		return nil
	}
	err := exec(db.dialect.Rebind(sqlSeedSupplyLoad), p.c.ID, p.digest, db.dialect.timeArg(p.at), len(p.supply), p.res.QuotaRows, p.res.Doses)
	if err != nil {
		if v, _ := db.dialect.classify(err); v == primaryKeyViolation || v == uniqueViolation {
			return booking.Errorf(booking.ECONFLICT, "supply file %s was applied to campaign %q before", p.digest, p.c.ID)
		}
		return fmt.Errorf("record supply load: %w", err)
	}
	return nil
}

// seedPostgres writes p in one pgx transaction on a connection of the
// pool, the quota rows by COPY.
func (db *DB) seedPostgres(ctx context.Context, p *seedPlan) error {
	conn, err := db.x.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("connection is %T, not pgx", dc)
		}
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		exec := func(q string, args ...any) error {
			_, err := tx.Exec(ctx, q, args...)
			return err
		}
		// The write lock on quotas is taken before the version is drawn and
		// held to commit, as an INSERT or UPDATE would hold it: the version
		// watermark (watermark.go) relies on that.
		if err := exec(sqlSeedLockPG); err != nil {
			return fmt.Errorf("lock quotas: %w", err)
		}
		var has int
		if err := tx.QueryRow(ctx, db.dialect.Rebind(sqlSeedHasQuotas), p.c.ID).Scan(&has); err != nil {
			return fmt.Errorf("check quotas: %w", err)
		}
		if has > 0 {
			return refuseNonEmpty(p.c.ID)
		}
		if err := db.seedCampaignAndClinics(exec, p); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, sqlSeedVersionPG).Scan(&p.res.Version); err != nil {
			return fmt.Errorf("next quota version: %w", err)
		}
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, newQuotaCopy(p), sqlSeedCopy)
		if err != nil {
			if v, _ := db.dialect.classify(err); v == primaryKeyViolation || v == uniqueViolation {
				// Not from the seed (prepareSeed refuses duplicates): rows
				// of the campaign were written since the check.
				return refuseNonEmpty(p.c.ID)
			}
			return fmt.Errorf("copy quotas: %w", err)
		}
		if n := tag.RowsAffected(); n != int64(p.res.QuotaRows) {
			return fmt.Errorf("copied %d quota rows, planned %d", n, p.res.QuotaRows)
		}
		if err := db.seedSupplyLoad(exec, p); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// quotaCopy is the COPY … FROM STDIN (FORMAT binary) stream of a seed's
// quota rows, encoded straight from the cursor: pgx's CopyFrom spent most
// of the client's CPU encoding millions of rows value by value, CPU the
// database needs on a small machine. The binary types must be the
// columns' own: TEXT, DATE (days since 2000-01-01), INTEGER, BIGINT for
// version; a migration that changes one makes the COPY fail, never load
// wrong values (TestSeedPostgres).
type quotaCopy struct {
	q        *quotaCursor
	campaign string
	version  int64
	buf      []byte
	off      int
	started  bool
	done     bool
	// group holds the encoded fields that the current supply row's waves
	// share: clinic_id, vdate, product, dose.
	group []byte
}

// sqlSeedCopy is the COPY statement quotaCopy feeds.
var sqlSeedCopy = "COPY quotas (" + strings.Join(seedQuotaColumns, ", ") + ") FROM STDIN (FORMAT binary)"

// pgEpoch is day 0 of PostgreSQL's binary DATE.
var pgEpoch = booking.Date{Year: 2000, Month: time.January, Day: 1}

// copyChunk is about how many bytes quotaCopy encodes at a time.
const copyChunk = 64 << 10

func newQuotaCopy(p *seedPlan) *quotaCopy {
	return &quotaCopy{q: newQuotaCursor(p), campaign: p.c.ID, version: p.res.Version, buf: make([]byte, 0, copyChunk+512)}
}

// Read implements io.Reader.
func (r *quotaCopy) Read(p []byte) (int, error) {
	if r.off >= len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// fill encodes the next rows (the header first, the trailer last) into buf.
func (r *quotaCopy) fill() {
	b := r.buf[:0]
	r.off = 0
	if !r.started {
		b = append(b, "PGCOPY\n\xff\r\n\x00"...)
		b = binary.BigEndian.AppendUint32(b, 0) // flags
		b = binary.BigEndian.AppendUint32(b, 0) // header extension length
		r.started = true
	}
	for len(b) < copyChunk {
		if !r.q.advance() {
			b = binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1
			r.done = true
			break
		}
		if r.q.first {
			row := r.q.row
			g := r.group[:0]
			g = appendText(g, row.ClinicID)
			g = binary.BigEndian.AppendUint32(g, 4)
			g = binary.BigEndian.AppendUint32(g, uint32(int32(row.Date.Sub(pgEpoch))))
			g = appendText(g, row.Product)
			g = appendInt4(g, row.Dose)
			r.group = g
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(seedQuotaColumns)))
		b = appendText(b, r.campaign)
		b = append(b, r.group...)
		b = appendInt4(b, r.q.wave)
		b = appendInt4(b, r.q.caps[r.q.wave])
		b = appendInt4(b, 0) // booked
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(r.version))
	}
	r.buf = b
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendInt4(b []byte, v int) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(int32(v)))
}
