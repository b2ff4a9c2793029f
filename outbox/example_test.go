package outbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/outbox"
)

// Example runs the whole path on embedded parts: a booking event written to
// the outbox table reaches a consumer through an in-process Kafka broker.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "yeyak.db"), sqlstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	brokers, stop, err := outbox.StartEmbeddedKafka(ctx, []string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	// The relay: outbox table → Kafka.
	w := outbox.NewWriter(brokers, outbox.DefaultTopic, outbox.WriterConfig{})
	defer w.Close()
	relay, err := outbox.NewRelay(store.DB(), string(store.Dialect()), w, outbox.RelayConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // stop relay and consumer first
	wg.Go(func() { _ = relay.Run(ctx) })

	// The consumer: Kafka → handler, once per event.
	applied := make(chan outbox.Message, 1)
	c, err := outbox.NewConsumer(outbox.ConsumerConfig{
		Brokers: brokers, GroupID: "example", DB: store.DB(), Dialect: string(store.Dialect()),
		Handler: func(_ context.Context, m outbox.Message) error {
			applied <- m
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	wg.Go(func() { _ = c.Run(ctx) })

	// What booking/sqlstore does in the booking transaction.
	b := &booking.Booking{ID: booking.NewID(), PersonID: "P0000000001", CampaignID: "c", ClinicID: "K1",
		Date: booking.MustDate("2021-08-26"), Product: "pfizer", Dose: 1, Status: booking.StatusConfirmed}
	ev := booking.NewEvent(booking.EventBookingConfirmed, b, nil, "", time.Now())
	_, err = store.DB().ExecContext(ctx, `INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at)
		VALUES (?, ?, ?, ?, '{"event-id":"`+ev.ID+`","event-type":"BookingConfirmed","schema-version":"1"}', ?)`,
		ev.ID, ev.Key, string(ev.Type), string(ev.Payload), ev.CreatedAt.Format(sqlstore.SQLiteTimeLayout))
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case m := <-applied:
		fmt.Println(m.Type, m.EventID == ev.ID)
	case <-ctx.Done():
		fmt.Println("timed out")
	}
	// Output: BookingConfirmed true
}
