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
