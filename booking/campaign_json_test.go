package booking_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// TestCampaignFile2021: the checked-in campaign file of the 2021 reference
// campaign (docs/campaign-2021.json) loads to exactly Campaign2021: a
// campaign is data, read from a file, with readable window offsets.
func TestCampaignFile2021(t *testing.T) {
	b, err := os.ReadFile("../docs/campaign-2021.json")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := booking.ParseCampaigns(b)
	if err != nil {
		t.Fatal(err)
	}
	want := booking.Campaign2021()
	if len(cs) != 1 || !cs[0].OpenUntil.Equal(want.OpenUntil) {
		t.Fatalf("parsed %+v", cs)
	}
	cs[0].OpenUntil = want.OpenUntil // same instant, zone pointer differs
	if !reflect.DeepEqual(cs[0], want) {
		t.Fatalf("the file differs from Campaign2021:\n%+v\n%+v", cs[0], want)
	}
	if !strings.Contains(string(b), `"opens": "20h"`) || !strings.Contains(string(b), `"closes": "42h"`) {
		t.Error("window offsets are not written as readable durations")
	}
}

func TestPhaseJSONDurations(t *testing.T) {
	for _, tc := range []struct {
		in    string
		opens time.Duration
		ok    bool
	}{
		{`{"kind":"open","starts":"2021-08-21","opens":"20h"}`, 20 * time.Hour, true},
		{`{"kind":"open","starts":"2021-08-21","opens":"41h30m"}`, 41*time.Hour + 30*time.Minute, true},
		{`{"kind":"open","starts":"2021-08-21","opens":72000000000000}`, 20 * time.Hour, true}, // stored form of earlier versions
		{`{"kind":"open","starts":"2021-08-21","opens":"8pm"}`, 0, false},
		{`{"kind":"open","starts":"2021-08-21","opens":true}`, 0, false},
	} {
		var p booking.Phase
		err := json.Unmarshal([]byte(tc.in), &p)
		if (err == nil) != tc.ok || (tc.ok && p.Opens != tc.opens) {
			t.Errorf("%s: %v, %v", tc.in, p.Opens, err)
		}
	}
	b, _ := json.Marshal(booking.Phase{Kind: booking.PhaseRotation, Opens: 0, Closes: 41*time.Hour + 30*time.Minute})
	if !strings.Contains(string(b), `"opens":"0s"`) || !strings.Contains(string(b), `"closes":"41h30m"`) {
		t.Errorf("marshal: %s", b)
	}
}

func TestParseCampaignsRefuses(t *testing.T) {
	good, _ := json.Marshal(booking.Campaign2021())
	for name, in := range map[string]string{
		"empty":         ``,
		"empty array":   `[]`,
		"unknown field": strings.Replace(string(good), `"name"`, `"nmae"`, 1),
		"invalid":       strings.Replace(string(good), `"vaccination_to":"2021-10-02"`, `"vaccination_to":"2021-01-01"`, 1),
		"twice":         "[" + string(good) + "," + string(good) + "]",
		"trailing":      string(good) + "{}",
		"null":          `[null]`,
	} {
		if _, err := booking.ParseCampaigns([]byte(in)); booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if cs, err := booking.ParseCampaigns(good); err != nil || len(cs) != 1 {
		t.Fatalf("good: %v", err)
	}
}
