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
package booking
