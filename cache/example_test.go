package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
)

// The booking path asks the cache, never the registry: the first lookup of
// a person reaches the registry (normally through adapter.Facade), the next
// ones are answered from memory, and an unknown id is remembered.
func Example() {
	reg := newFakeRegistry() // in production: the adapter.Facade
	reg.put(adapter.Record{PersonID: "P0000000001", BirthDate: time.Date(1966, 3, 19, 0, 0, 0, 0, time.UTC)})

	c, err := cache.New(reg, cache.Config{Logger: quiet})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	for range 2 {
		e, err := c.Get(ctx, "P0000000001")
		fmt.Println(e.Source, e.Stale, err)
	}
	p, err := c.Person(ctx, "P0000000001") // booking.PersonSource
	fmt.Println(p.BirthDate, p.DosesReceived, p.Excluded, err)

	_, err = c.Get(ctx, "P0000000002")
	fmt.Println(errors.Is(err, adapter.ErrNotFound))

	reg.down.Store(true) // the registry stops answering
	_, err = c.Get(ctx, "P0000000003")
	fmt.Println(errors.Is(err, adapter.ErrUnavailable))
	e, err := c.Get(ctx, "P0000000001") // cached people still answer
	fmt.Println(e.Source, err)
	fmt.Println("registry reads:", reg.single.Load())
	// Output:
	// registry false <nil>
	// memory false <nil>
	// 1966-03-19 0 false <nil>
	// true
	// true
	// memory <nil>
	// registry reads: 3
}
