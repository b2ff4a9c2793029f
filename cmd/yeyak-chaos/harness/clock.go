package harness

import (
	"time"

	"github.com/yeyak/yeyak/booking"
)

// seoul is the demo campaign's zone (Korea keeps no summer time).
var seoul = time.FixedZone("KST", 9*60*60)

// Clock is the clock a test world runs on: it starts at noon in Seoul on
// the current Seoul date and runs on at the real pace. The demo campaign's
// booking windows open at midnight in Seoul and the waiting room draws
// everyone who arrives in the half hour before an opening (issue 10), so a
// world on the wall clock behaves differently between 23:30 and 24:00 in
// Seoul (14:30–15:00 UTC): a crowd there waits for the draw instead of
// being admitted. At noon nothing opens for hours, whatever the hour the
// run starts.
type Clock struct {
	start, began time.Time
}

// NoonClock returns a Clock at noon in Seoul of the current Seoul date.
func NoonClock() *Clock {
	now := time.Now()
	y, m, d := now.In(seoul).Date()
	return &Clock{start: time.Date(y, m, d, 12, 0, 0, 0, seoul), began: now}
}

// Now is the clock's current time.
func (c *Clock) Now() time.Time { return c.start.Add(time.Since(c.began)) }

// Today is the clock's Seoul date: the demo campaign's rotation day.
func (c *Clock) Today() booking.Date { return booking.DateOf(c.Now().In(seoul)) }

// Flag is the clock's current time for yeyakd --now: a yeyakd started
// (or restarted) with it keeps the clock's time.
func (c *Clock) Flag() string { return c.Now().Format(time.RFC3339Nano) }
