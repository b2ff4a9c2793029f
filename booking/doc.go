// Package booking is the domain of yeyak: campaigns and their booking phases
// (rotation days, catch-up windows, the open period), clinics, quotas split
// into equal shares across booking waves, bookings, the Service that books,
// cancels and reschedules, and the errors with stable codes that cross the API.
//
// It imports nothing of the project's: persistence (booking/sqlstore), HTTP
// (booking/httpapi) and the registry (adapter/) depend on it, never the other
// way round. The rules are pure functions of their inputs (see CanBook and
// Shares), so frontends and tests can ask them directly:
//
//	d := booking.CanBook(campaign, birthDate, time.Now())
//	if !d.OK {
//		fmt.Println(d.Reason, "next opens at", d.OpensAt)
//	}
//
// The Service books through a Store in one transaction per change: the
// quota decrement, the booking row and its outbox events. Booking dose 1 of
// a two-dose product also reserves dose 2 at the same clinic on the
// interval date, or the nearest date within the product's tolerance that
// has a dose (SecondDoseDates), or fails whole with ESECONDDOSE; the two
// bookings name each other (Booking.LinkedID), and cancelling or
// rescheduling dose 1 carries dose 2 along. Assign books the first of an
// ordered list of candidate slots that has a dose. After every committed
// change ServiceConfig.OnPersonChanged (by default the eligibility cache's
// Invalidate) is told the person's registry view changed.
//
// Supply arrives as files (SupplyParser, SupplyLoader): validated row by
// row, applied whole in one transaction, once per file digest, refused
// with a SupplyConflictError when it would go below what is booked.
// Supply is split into equal shares per wave (SplitSupply); a reload keeps
// every wave at or above its bookings (Redistribute). When a rotation
// day's window closes, a Roller moves the day's unbooked share to the open
// wave, exactly once:
//
//	loader, _ := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: db})
//	res, err := loader.Load(ctx, campaignID, booking.SupplyCSV, file)
//	roller, _ := booking.NewRoller(booking.RollerConfig{Store: db})
//	go roller.Run(ctx)
package booking
