package booking_test

import (
	"fmt"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// CanBook tells a frontend whether a person may book now and, if not, when.
// In the 2021 campaign a person born on the 31st (digit 1) books on 11
// August from 20:00 to 18:00 the next day.
func ExampleCanBook() {
	c := booking.Campaign2021()
	seoul := c.Location()
	birth := booking.MustDate("1995-07-31")

	for _, now := range []time.Time{
		time.Date(2021, 8, 10, 21, 0, 0, 0, seoul),
		time.Date(2021, 8, 11, 20, 0, 0, 0, seoul),
	} {
		d := booking.CanBook(c, birth, now)
		if d.OK {
			fmt.Printf("%s: book now from wave %d, until %s\n", now.Format("01-02 15:04"), d.Wave, d.ClosesAt.Format("01-02 15:04"))
		} else {
			fmt.Printf("%s: %s, opens %s\n", now.Format("01-02 15:04"), d.Reason, d.OpensAt.Format("01-02 15:04"))
		}
	}
	// Output:
	// 08-10 21:00: not_your_rotation_day, opens 08-11 20:00
	// 08-11 20:00: book now from wave 3, until 08-12 18:00
}

// Shares splits a clinic's supply evenly across waves; the remainder goes to
// waves start, start+1, ….
func ExampleShares() {
	fmt.Println(booking.Shares(100, 11, 3))
	// Output: [9 9 9 10 9 9 9 9 9 9 9]
}

// Dose 2 of a dose 1 on 1 September goes 42 days later, or as near to that
// as the tolerance allows, the earlier of two equally near dates first.
func ExampleSecondDoseDates() {
	pfizer := booking.Product{ID: "pfizer", Doses: 2, IntervalDays: 42, ToleranceDays: 2}
	fmt.Println(booking.SecondDoseDates(pfizer, booking.MustDate("2021-09-01")))
	// Output: [2021-10-13 2021-10-12 2021-10-14 2021-10-11 2021-10-15]
}

// Redistribute re-sizes a clinic's waves when its supply changes: no wave
// goes below what it has booked, and a rotation wave whose window closed
// and rolled over keeps only its bookings, its share going to the open
// wave (wave 0).
func ExampleRedistribute() {
	c := booking.Campaign2021() // 11 waves
	s := booking.Supply{CampaignID: c.ID, ClinicID: "C1", Date: booking.MustDate("2021-09-01"), Product: "pfizer", Dose: 1, Doses: 121}
	booked := []int{0, 4} // wave 1 booked 4 before its window closed
	caps, ok := booking.Redistribute(c, s, booked, func(w int) bool { return w == 1 })
	fmt.Println(caps, ok)
	// Output: [18 4 11 11 11 11 11 11 11 11 11] true
}
