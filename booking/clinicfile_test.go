package booking_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/yeyak/yeyak/booking"
)

func TestParseClinics(t *testing.T) {
	csv := "id,name,region,lat,lon,products\n" +
		"C1,Jongno Clinic,11-110,37.57,126.98,pfizer;moderna\n" +
		"C2,\"Haeundae, Busan\",26-350,35.16,129.16,pfizer\n"
	cs, err := booking.ParseClinics(strings.NewReader(csv), booking.SupplyCSV)
	if err != nil || len(cs) != 2 || cs[0].Products[1] != "moderna" || cs[1].Name != "Haeundae, Busan" {
		t.Fatalf("good csv: %+v %v", cs, err)
	}
	js := `[{"id":"C1","name":"Jongno","region":"11-110","lat":37.57,"lon":126.98,"products":["pfizer"]}]`
	if cs, err := booking.ParseClinics(strings.NewReader(js), booking.SupplyJSON); err != nil || len(cs) != 1 {
		t.Fatalf("good json: %+v %v", cs, err)
	}
	for name, tc := range map[string]struct {
		in     string
		format booking.SupplyFormat
		lines  []int
	}{
		"bad rows": {"id,name,region,lat,lon,products\n" +
			"C1,Jongno,11-110,37.57,126.98,pfizer\n" +
			"C1,Again,11-110,37.57,126.98,pfizer\n" + // line 3: repeated id
			"C3,,11-110,37.57,126.98,pfizer\n" + // line 4: no name
			"C4,X,seoul,37.57,126.98,pfizer\n" + // line 5: region
			"C5,X,11-110,north,126.98,pfizer\n" + // line 6: lat
			"C6,X,11-110,37.57,126.98,\n" + // line 7: no product
			"C7,X,11-110\n", // line 8: short row
			booking.SupplyCSV, []int{8, 3, 4, 5, 6, 7}},
		"bad header":         {"id,name\nC1,x\n", booking.SupplyCSV, []int{1}},
		"json unknown field": {`[{"id":"C1","nmae":"x"}]`, booking.SupplyJSON, []int{-1}},
		"json bad clinic":    {`[{"id":"C1","name":"x","region":"11-110","lat":99,"lon":0,"products":["p"]}]`, booking.SupplyJSON, []int{0}},
	} {
		_, err := booking.ParseClinics(strings.NewReader(tc.in), tc.format)
		var fe *booking.ClinicFileError
		if !errors.As(err, &fe) || booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("%s: %v, want a ClinicFileError (EINVALID)", name, err)
			continue
		}
		var got []int
		for _, r := range fe.Rows {
			got = append(got, r.Line)
		}
		if len(got) != len(tc.lines) {
			t.Errorf("%s: lines %v, want %v (%v)", name, got, tc.lines, fe)
			continue
		}
		for i := range got {
			if got[i] != tc.lines[i] {
				t.Errorf("%s: lines %v, want %v (%v)", name, got, tc.lines, fe)
				break
			}
		}
	}
}
