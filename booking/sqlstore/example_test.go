package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
)

func Example() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite::memory:", sqlstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	day := booking.MustDate("2021-08-26")
	// Clinic 1 has one pfizer dose in wave 3 on that day.
	err = db.SetQuotas(ctx, []booking.Quota{{
		CampaignID: "covid-18-49", ClinicID: "clinic-1", Date: day,
		Product: "pfizer", Dose: 1, Wave: 3, Capacity: 1,
	}})
	if err != nil {
		log.Fatal(err)
	}

	book := func(personID string) error {
		b := &booking.Booking{
			ID: booking.NewID(), PersonID: personID, CampaignID: "covid-18-49",
			ClinicID: "clinic-1", Date: day, Product: "pfizer", Dose: 1, Wave: 3,
			Status: booking.StatusConfirmed,
		}
		ev := booking.NewEvent(booking.EventBookingConfirmed, b, nil, "", time.Now())
		return db.CreateBookings(ctx, []*booking.Booking{b}, []booking.Event{ev})
	}
	fmt.Println("first:", booking.ErrorCode(book("person-a")) == "")
	fmt.Println("second:", booking.ErrorCode(book("person-b")))

	qs, _ := db.Quotas(ctx, "covid-18-49")
	fmt.Printf("wave %d: %d of %d booked\n", qs[0].Wave, qs[0].Booked, qs[0].Capacity)
	// Output:
	// first: true
	// second: sold_out
	// wave 3: 1 of 1 booked
}
