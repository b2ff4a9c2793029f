package booking_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/yeyak/yeyak/booking"
)

// supplyCampaign offers a two-dose and a one-dose product from 26 August
// to 2 October 2021.
func supplyCampaign() *booking.Campaign {
	return &booking.Campaign{
		ID:              "c1",
		Products:        []booking.Product{{ID: "pfizer", Doses: 2, IntervalDays: 42}, {ID: "janssen"}},
		VaccinationFrom: booking.MustDate("2021-08-26"),
		VaccinationTo:   booking.MustDate("2021-10-02"),
	}
}

func sup(clinic, date, product string, dose, doses int) booking.Supply {
	return booking.Supply{CampaignID: "c1", ClinicID: clinic, Date: booking.MustDate(date), Product: product, Dose: dose, Doses: doses}
}

// at sets the file position a parsed row carries.
func at(line int, s booking.Supply) booking.Supply {
	s.Line = line
	return s
}

// badRows returns the SupplyError's rows, failing if err is not one with
// code EINVALID.
func badRows(t *testing.T, err error) []booking.SupplyRowError {
	t.Helper()
	var se *booking.SupplyError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *SupplyError", err)
	}
	if booking.ErrorCode(err) != booking.EINVALID || !errors.Is(err, &booking.Error{Code: booking.EINVALID}) {
		t.Fatalf("code %s, want %s", booking.ErrorCode(err), booking.EINVALID)
	}
	return se.Rows
}

type badRow struct {
	line   int
	reason string // a part of the reason
}

func checkBad(t *testing.T, err error, want []badRow) {
	t.Helper()
	got := badRows(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d bad rows, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Line != w.line || !strings.Contains(got[i].Reason, w.reason) {
			t.Errorf("bad row %d = {%d %q}, want line %d with %q", i, got[i].Line, got[i].Reason, w.line, w.reason)
		}
	}
}

func TestParseSupplyCSV(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []booking.Supply
		bad  []badRow
	}{
		{
			name: "good, dose defaults to 1, spaces and CRLF",
			in:   "clinic_id,date,product,dose,doses\r\nC1,2021-08-26,pfizer,1,100\r\n C1 , 2021-10-07 , pfizer , 2 , 40 \r\nC2,2021-10-02,janssen,,0\r\n",
			want: []booking.Supply{at(2, sup("C1", "2021-08-26", "pfizer", 1, 100)), at(3, sup("C1", "2021-10-07", "pfizer", 2, 40)), at(4, sup("C2", "2021-10-02", "janssen", 1, 0))},
		},
		{
			name: "columns in any order, no dose column, BOM, blank lines, quoted field",
			in:   "\uFEFFdoses,product,clinic_id,date\n\n7,janssen,\"C,9\",2021-09-01\n\n",
			want: []booking.Supply{at(3, sup("C,9", "2021-09-01", "janssen", 1, 7))},
		},
		{
			name: "every bad row listed with its line",
			in: "clinic_id,date,product,dose,doses\n" +
				"C1,2021-08-26,pfizer,1,100\n" + // 2 good
				"C1,2021-08-25,pfizer,1,100\n" + // 3 before the range
				"C1,2021-10-03,pfizer,1,100\n" + // 4 after the range
				"C1,2021-02-30,pfizer,1,100\n" + // 5 bad date
				"C1,26/08/2021,pfizer,1,100\n" + // 6 bad date
				"C1,2021-08-26,astra,1,100\n" + // 7 unknown product
				"C1,2021-08-27,pfizer,1,-5\n" + // 8 negative
				"C1,2021-08-27,pfizer,2,1.5\n" + // 9 not an integer
				"C1,2021-08-28,pfizer,3,10\n" + // 10 dose above the product's
				"C1,2021-08-28,janssen,2,10\n" + // 11 one-dose product
				"C1,2021-08-28,pfizer,0,10\n" + // 12 dose 0
				"C1,2021-08-28,pfizer,x,10\n" + // 13 dose not a number
				"C1,2021-08-26,pfizer,,5\n" + // 14 duplicate of line 2 (dose 1 by default)
				"C1,2021-08-29,pfizer,1\n" + // 15 missing field
				",2021-08-29,pfizer,1,5\n" + // 16 empty clinic
				"C1,2021-08-29,,1,5\n" + // 17 empty product
				"C1,2021-08-29,pfizer,1,\n" + // 18 empty doses
				"C1,2021-08-29,pfizer,1,2000000\n" + // 19 too many doses
				"C1,2021-08-29,pfizer,1,99999999999999999999\n" + // 20 overflow
				"C1,2021-08-29,pfizer,1,5,extra\n" + // 21 extra field
				"C1,2021-08-30,pfizer,1,5\n", // 22 good
			bad: []badRow{
				{3, "date 2021-08-25 is outside the campaign's vaccination dates 2021-08-26..2021-10-02"},
				{4, "outside"},
				{5, `date "2021-02-30" is not a valid`},
				{6, `date "26/08/2021" is not a valid`},
				{7, `unknown product "astra" for campaign "c1"`},
				{8, "doses -5 is negative"},
				{9, `doses "1.5" is not a whole number`},
				{10, `dose 3 is outside 1..2 for product "pfizer"`},
				{11, `dose 2 is outside 1..1 for product "janssen"`},
				{12, "dose 0 is outside 1..2"},
				{13, `dose "x" is not a whole number`},
				{14, "duplicate of the row at line 2"},
				{15, "the row has 4 fields, the header 5"},
				{16, "clinic_id is empty"},
				{17, "product is empty"},
				{18, "doses is empty"},
				{19, "doses 2000000 is more than 1000000"},
				{20, "is not a whole number"},
				{21, "the row has 6 fields, the header 5"},
			},
		},
		{
			name: "dose 2 supply lies an interval (± tolerance) after the vaccination dates",
			in: "clinic_id,date,product,dose,doses\n" +
				"C1,2021-10-06,pfizer,2,1\n" + // 2 before 08-26 + 42 days
				"C1,2021-10-07,pfizer,2,1\n" + // 3 first dose-2 date
				"C1,2021-11-13,pfizer,2,1\n" + // 4 last dose-2 date: 10-02 + 42 days
				"C1,2021-11-14,pfizer,2,1\n" + // 5 after
				"C1,2021-10-07,pfizer,1,1\n", // 6 dose 1 after the vaccination dates
			bad: []badRow{
				{2, `date 2021-10-06 is outside the dates for dose 2 of "pfizer", 2021-10-07..2021-11-13`},
				{5, "date 2021-11-14 is outside the dates for dose 2"},
				{6, "date 2021-10-07 is outside the campaign's vaccination dates 2021-08-26..2021-10-02"},
			},
		},
		{
			name: "several problems of one row in one reason",
			in:   "clinic_id,date,product,doses\nC1,2020-01-01,astra,-1\n",
			bad:  []badRow{{2, "unknown product \"astra\" for campaign \"c1\"; date 2020-01-01 is outside the campaign's vaccination dates 2021-08-26..2021-10-02; doses -1 is negative"}},
		},
		{
			name: "a quoted field spanning lines: the line where the row starts",
			in:   "clinic_id,date,product,doses\n\"C\n1\",2021-08-26,pfizer,1\nC2,2021-08-26,pfizer,x\n",
			bad:  []badRow{{4, `doses "x"`}},
		},
		{
			name: "broken quoting is a bad row and reading goes on",
			in:   "clinic_id,date,product,doses\nC\"1,2021-08-26,pfizer,1\nC2,2021-08-26,astra,1\n",
			bad:  []badRow{{2, "bare"}, {3, "unknown product"}},
		},
		{name: "empty file", in: "", bad: []badRow{{1, "the file is empty"}}},
		{name: "header only", in: "clinic_id,date,product,doses\n", bad: []badRow{{1, "no rows"}}},
		{
			name: "missing columns",
			in:   "clinic_id,product\nC1,pfizer\n",
			bad:  []badRow{{1, `header: missing column "date"; missing column "doses"`}},
		},
		{
			name: "unknown and repeated columns",
			in:   "clinic_id,date,product,doses,Doses,date\nC1,2021-08-26,pfizer,1,1,2021-08-26\n",
			bad:  []badRow{{1, `header: unknown column "Doses"; column "date" appears twice`}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := booking.ParseSupplyCSV(strings.NewReader(tc.in), supplyCampaign())
			if tc.bad != nil {
				if got != nil {
					t.Errorf("rows returned with an error: %v", got)
				}
				checkBad(t, err, tc.bad)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseSupplyJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []booking.Supply
		bad  []badRow
	}{
		{
			name: "good, dose missing or null means 1",
			in: `[{"clinic_id":"C1","date":"2021-10-07","product":"pfizer","dose":2,"doses":40},
			      {"clinic_id":"C1","date":"2021-08-26","product":"pfizer","doses":100},
			      {"clinic_id":"C2","date":"2021-10-02","product":"janssen","dose":null,"doses":0}]`,
			want: []booking.Supply{at(0, sup("C1", "2021-10-07", "pfizer", 2, 40)), at(1, sup("C1", "2021-08-26", "pfizer", 1, 100)), at(2, sup("C2", "2021-10-02", "janssen", 1, 0))},
		},
		{
			name: "every bad item listed by index",
			in: `[
				{"clinic_id":"C1","date":"2021-08-26","product":"pfizer","doses":100},
				{"clinic_id":"C1","date":"2021-08-25","product":"pfizer","doses":100},
				{"clinic_id":"C1","date":"2021-08-26","product":"astra","doses":100},
				{"clinic_id":"C1","date":"2021-08-27","product":"pfizer","doses":1.5},
				{"clinic_id":"C1","date":"2021-08-27","product":"pfizer","doses":1e2},
				{"clinic_id":"C1","date":"2021-08-27","product":"pfizer","doses":"100"},
				{"clinic_id":"C1","date":"2021-08-27","product":"pfizer","doses":-1},
				{"clinic_id":"C1","date":"2021-08-27","product":"pfizer","dose":3,"doses":1},
				{"clinic_id":"C1","date":"2021-08-26","product":"pfizer","dose":1,"doses":7},
				{"clinic_id":"C1","date":"2021-08-28","product":"pfizer"},
				{"clinic_id":"C1","date":"2021-08-28","product":"pfizer","doses":1,"color":"red"},
				{"clinic_id":"C1","clinic_id":"C2","date":"2021-08-28","product":"pfizer","doses":1},
				{"clinic_id":7,"date":"2021-08-28","product":"pfizer","doses":1},
				"not an object",
				{"clinic_id":"C1","date":"2021-08-29","product":"pfizer","doses":1}
			]`,
			bad: []badRow{
				{1, "outside the campaign's vaccination dates"},
				{2, `unknown product "astra"`},
				{3, `doses "1.5" is not a whole number`},
				{4, `doses "1e2" is not a whole number`},
				{5, "doses must be a whole number"},
				{6, "doses -1 is negative"},
				{7, "dose 3 is outside 1..2"},
				{8, "duplicate of the row at item 0"},
				{9, `missing field "doses"`},
				{10, `unknown field "color"`},
				{11, `field "clinic_id" appears twice`},
				{12, "clinic_id must be a string"},
				{13, "the item is not an object"},
			},
		},
		{name: "empty file", in: "", bad: []badRow{{-1, "the file is empty"}}},
		{name: "empty array", in: " [ ] ", bad: []badRow{{-1, "no rows"}}},
		{name: "not an array", in: `{"clinic_id":"C1"}`, bad: []badRow{{-1, "not a JSON array"}}},
		{name: "data after the array", in: `[{"clinic_id":"C1","date":"2021-08-26","product":"pfizer","doses":1}] []`, bad: []badRow{{-1, "data after"}}},
		{
			name: "truncated: the rows before and the break",
			in:   `[{"clinic_id":"C1","date":"2021-08-26","product":"astra","doses":1}, {"clinic_id":"C1","da`,
			bad:  []badRow{{0, "unknown product"}, {1, "malformed JSON"}},
		},
		{name: "syntax error", in: `[{"clinic_id" "C1"}]`, bad: []badRow{{0, "malformed JSON"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := booking.ParseSupplyJSON(strings.NewReader(tc.in), supplyCampaign())
			if tc.bad != nil {
				if got != nil {
					t.Errorf("rows returned with an error: %v", got)
				}
				checkBad(t, err, tc.bad)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestSupplyMaxRows: a file over the limit is refused at the first row
// over it, without reading further.
func TestSupplyMaxRows(t *testing.T) {
	var csvIn, jsonIn strings.Builder
	csvIn.WriteString("clinic_id,date,product,doses\n")
	jsonIn.WriteString("[")
	for i := range 5 {
		fmt.Fprintf(&csvIn, "C%d,2021-08-26,pfizer,1\n", i)
		if i > 0 {
			jsonIn.WriteString(",")
		}
		fmt.Fprintf(&jsonIn, `{"clinic_id":"C%d","date":"2021-08-26","product":"pfizer","doses":1}`, i)
	}
	jsonIn.WriteString("]")
	c := supplyCampaign()

	if rows, err := (booking.SupplyParser{MaxRows: 5}).CSV(strings.NewReader(csvIn.String()), c); err != nil || len(rows) != 5 {
		t.Fatalf("5 rows at limit 5: %d rows, %v", len(rows), err)
	}
	_, err := booking.SupplyParser{MaxRows: 3}.CSV(strings.NewReader(csvIn.String()+"this,is,never,read,!\n"), c)
	checkBad(t, err, []badRow{{5, "more than 3 rows"}})

	if rows, err := (booking.SupplyParser{MaxRows: 5}).JSON(strings.NewReader(jsonIn.String()), c); err != nil || len(rows) != 5 {
		t.Fatalf("5 items at limit 5: %d rows, %v", len(rows), err)
	}
	_, err = booking.SupplyParser{MaxRows: 3}.JSON(strings.NewReader(jsonIn.String()), c)
	checkBad(t, err, []badRow{{3, "more than 3 rows"}})
}

// TestSupplyReadError: a failing reader is an I/O error kept in the chain,
// not a bad file.
func TestSupplyReadError(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name, head string
		parse      func(io.Reader, *booking.Campaign) ([]booking.Supply, error)
	}{
		{"csv", "clinic_id,date,product,doses\nC1,2021-08-26,", booking.ParseSupplyCSV},
		{"json", `[{"clinic_id":"C1",`, booking.ParseSupplyJSON},
	} {
		name, parse := tc.name, tc.parse
		r := io.MultiReader(strings.NewReader(tc.head), iotest.ErrReader(boom))
		if _, err := parse(r, supplyCampaign()); !errors.Is(err, boom) || booking.ErrorCode(err) != booking.EINTERNAL {
			t.Errorf("%s: got %v, want the read error", name, err)
		}
		if _, err := parse(strings.NewReader(""), nil); booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("%s: nil campaign: got %v", name, err)
		}
	}
}

// TestSupplyErrorMessage: the message lists the first rows and counts the
// rest; Rows keeps all of them.
func TestSupplyErrorMessage(t *testing.T) {
	var in strings.Builder
	in.WriteString("clinic_id,date,product,doses\n")
	for i := range 30 {
		fmt.Fprintf(&in, "C%d,2021-08-26,astra,1\n", i)
	}
	_, err := booking.ParseSupplyCSV(strings.NewReader(in.String()), supplyCampaign())
	if rows := badRows(t, err); len(rows) != 30 {
		t.Fatalf("%d bad rows, want 30", len(rows))
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "supply csv file has 30 bad row(s): line 2: unknown product") || !strings.HasSuffix(msg, "; and 10 more") {
		t.Fatalf("message %q", msg)
	}
	if booking.ErrorMessage(err) != msg {
		t.Fatalf("ErrorMessage %q, want %q", booking.ErrorMessage(err), msg)
	}
}

func TestSupplyDigest(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2 test vector).
	if got := booking.SupplyDigest([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("digest %s", got)
	}
	if booking.SupplyDigest([]byte("a,b\n")) == booking.SupplyDigest([]byte("a,b\r\n")) {
		t.Fatal("different files, same digest")
	}
}

// FuzzParseSupplyCSV: any input either parses into rows that all obey the
// rules (and write back to CSV that parses to the same rows), or fails with
// a *SupplyError (EINVALID) whose rows all have a line and a reason. It
// never panics.
func FuzzParseSupplyCSV(f *testing.F) {
	f.Add([]byte("clinic_id,date,product,dose,doses\nC1,2021-08-26,pfizer,1,100\nC1,2021-10-07,pfizer,2,40\n"))
	f.Add([]byte("doses,product,clinic_id,date\n7,janssen,\"C,9\",2021-09-01\n"))
	f.Add([]byte("clinic_id,date,product,doses\nC1,2021-08-25,astra,-1\n\"x\ny\",2021-08-26,pfizer,1\n"))
	c := supplyCampaign()
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := booking.SupplyParser{MaxRows: 1000}.CSV(bytes.NewReader(data), c)
		if err != nil {
			var se *booking.SupplyError
			if !errors.As(err, &se) || booking.ErrorCode(err) != booking.EINVALID || len(se.Rows) == 0 || rows != nil {
				t.Fatalf("error %v (rows %v) is not a SupplyError with rows", err, rows)
			}
			for _, r := range se.Rows {
				if r.Line < 1 || r.Reason == "" {
					t.Fatalf("bad row %+v", r)
				}
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows and no error")
		}
		seen := map[string]bool{}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{"clinic_id", "date", "product", "dose", "doses"})
		for _, s := range rows {
			p, ok := c.Product(s.Product)
			from, to := booking.SupplyDates(c, p, s.Dose)
			key := fmt.Sprint(s.ClinicID, "|", s.Date, "|", s.Product, "|", s.Dose)
			switch {
			case s.CampaignID != c.ID, s.ClinicID == "", !ok, s.Date.Before(from), s.Date.After(to),
				s.Dose < 1, s.Dose > p.DosesOf(), s.Doses < 0, s.Doses > booking.MaxSupplyDoses, seen[key]:
				t.Fatalf("accepted a bad row %+v", s)
			}
			seen[key] = true
			_ = w.Write([]string{s.ClinicID, s.Date.String(), s.Product, strconv.Itoa(s.Dose), strconv.Itoa(s.Doses)})
		}
		w.Flush()
		again, err := booking.ParseSupplyCSV(&buf, c)
		for i := range again { // the rewritten file has its own line numbers
			again[i].Line = 0
		}
		for i := range rows {
			rows[i].Line = 0
		}
		if err != nil || !reflect.DeepEqual(again, rows) {
			t.Fatalf("round trip: %v\n got %v\nwant %v", err, again, rows)
		}
	})
}

// Ops load supply from a CSV file; a file with bad rows is refused whole,
// every bad row listed with its line.
func ExampleParseSupplyCSV() {
	c := &booking.Campaign{
		ID:              "covid19",
		Products:        []booking.Product{{ID: "pfizer", Doses: 2, IntervalDays: 42}},
		VaccinationFrom: booking.MustDate("2021-08-26"),
		VaccinationTo:   booking.MustDate("2021-10-02"),
	}
	good := "clinic_id,date,product,dose,doses\nC000001,2021-08-26,pfizer,1,100\nC000001,2021-10-07,pfizer,2,100\n"
	rows, err := booking.ParseSupplyCSV(strings.NewReader(good), c)
	fmt.Println(len(rows), err, booking.SupplyDigest([]byte(good))[:12])

	bad := "clinic_id,date,product,doses\nC000001,2021-08-26,moderna,100\nC000001,2021-08-26,pfizer,-3\n"
	_, err = booking.ParseSupplyCSV(strings.NewReader(bad), c)
	var se *booking.SupplyError
	if errors.As(err, &se) {
		for _, r := range se.Rows {
			fmt.Printf("line %d: %s\n", r.Line, r.Reason)
		}
	}
	fmt.Println(booking.ErrorCode(err))
	// Output:
	// 2 <nil> 338a9328a317
	// line 2: unknown product "moderna" for campaign "covid19"
	// line 3: doses -3 is negative
	// invalid_request
}

func TestSupplyDates(t *testing.T) {
	c := &booking.Campaign{VaccinationFrom: booking.MustDate("2021-08-26"), VaccinationTo: booking.MustDate("2021-10-02")}
	for _, tc := range []struct {
		name     string
		p        booking.Product
		dose     int
		from, to string
	}{
		{"dose 1", booking.Product{Doses: 2, IntervalDays: 42, ToleranceDays: 3}, 1, "2021-08-26", "2021-10-02"},
		{"one-dose product", booking.Product{}, 2, "2021-08-26", "2021-10-02"},
		{"dose 2 with tolerance", booking.Product{Doses: 2, IntervalDays: 42, ToleranceDays: 3}, 2, "2021-10-04", "2021-11-16"},
		{"dose 3", booking.Product{Doses: 3, IntervalDays: 21}, 3, "2021-10-07", "2021-11-13"},
		{"never before dose 1 dates", booking.Product{Doses: 2, ToleranceDays: 5}, 2, "2021-08-26", "2021-10-07"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := booking.SupplyDates(c, tc.p, tc.dose)
			if from.String() != tc.from || to.String() != tc.to {
				t.Fatalf("got %s..%s, want %s..%s", from, to, tc.from, tc.to)
			}
		})
	}
}
