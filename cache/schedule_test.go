package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
)

func rotationCampaign() *booking.Campaign {
	return &booking.Campaign{
		ID:       "c",
		TimeZone: "Asia/Seoul",
		Phases: []booking.Phase{
			{Kind: booking.PhaseRotation, Starts: booking.MustDate("2021-08-09"), Days: 10, Opens: 20 * time.Hour, Closes: 42 * time.Hour},
			{Kind: booking.PhaseOpen, Starts: booking.MustDate("2021-08-21"), Opens: 20 * time.Hour},
			{Kind: booking.PhaseRotation, Starts: booking.MustDate("2021-09-01"), Days: 2, Digits: []int{5, 7}, Opens: 9 * time.Hour, Closes: 18 * time.Hour},
		},
	}
}

func TestNextWarmDigit(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, seoul)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		now       string
		wantDigit int
		wantOpens string
		wantOK    bool
	}{
		{"2021-08-01 00:00", 9, "2021-08-09 20:00", true},
		{"2021-08-09 12:00", 9, "2021-08-09 20:00", true},
		{"2021-08-09 20:00", 0, "2021-08-10 20:00", true}, // day 0 has opened: next is day 1
		{"2021-08-13 23:00", 4, "2021-08-14 20:00", true},
		{"2021-08-18 20:30", 5, "2021-09-01 09:00", true}, // first rotation over: the second, with a digit table
		{"2021-09-01 10:00", 7, "2021-09-02 09:00", true},
		{"2021-09-02 09:00", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.now, func(t *testing.T) {
			d, opens, ok := cache.NextWarmDigit(rotationCampaign(), at(tt.now))
			if ok != tt.wantOK || (ok && (d != tt.wantDigit || !opens.Equal(at(tt.wantOpens)))) {
				t.Fatalf("NextWarmDigit = %d, %v, %v; want %d, %s, %v", d, opens, ok, tt.wantDigit, tt.wantOpens, tt.wantOK)
			}
		})
	}
}

func TestWarmBefore(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	reg, pcfg := populated(3_000)
	c := newCache(t, reg, cache.Config{})
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: rosterOf(pcfg), ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	camp := rotationCampaign()
	const lead = 6 * time.Hour
	steps := []struct {
		now         time.Time
		wantStarted bool
		wantDigit   int
	}{
		{time.Date(2021, 8, 9, 13, 0, 0, 0, seoul), false, 9}, // 7h before: too early
		{time.Date(2021, 8, 9, 15, 0, 0, 0, seoul), true, 9},
		{time.Date(2021, 8, 9, 16, 0, 0, 0, seoul), false, 9}, // once per window
		{time.Date(2021, 8, 10, 14, 30, 0, 0, seoul), true, 0},
	}
	for _, s := range steps {
		d, started, err := w.WarmBefore(ctx, camp, s.now, lead)
		if err != nil || started != s.wantStarted || d != s.wantDigit {
			t.Fatalf("WarmBefore(%v) = %d, %v, %v; want %d, %v", s.now, d, started, err, s.wantDigit, s.wantStarted)
		}
		if started {
			eventually(t, "warmer to finish", func() bool { return w.Status().State == cache.WarmerDone })
			if st := w.Status(); st.Digit != d || st.People == 0 {
				t.Fatalf("status = %+v after warming digit %d", st, d)
			}
		}
	}
}
