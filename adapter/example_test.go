package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// ExampleFacade wraps a registry, lets a failing registry trip the read
// breaker, and shows what callers and ops see.
func ExampleFacade() {
	registry := &fakeRegistry{} // in production: a gateway.Client or oracle.Registry
	f, err := adapter.NewFacade(registry, adapter.FacadeConfig{
		MinRequests:  5,                      // trip after 5 calls in the window…
		FailureRatio: 0.5,                    // …if half of them failed
		ReadTimeout:  200 * time.Millisecond, // no caller waits longer
		Logger:       quietLogger(),
	})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	ctx := context.Background()

	registry.set(errBoom, 0) // the registry starts failing
	for range 5 {
		_, _ = f.Eligibility(ctx, "P0000000001")
	}
	_, err = f.Eligibility(ctx, "P0000000001")
	fmt.Println("unavailable:", errors.Is(err, adapter.ErrUnavailable))
	for _, b := range f.Breakers() {
		fmt.Println(b.Name, b.State)
	}

	// Ops: after the incident, start the read breaker afresh.
	_ = f.Reset(ctx, adapter.BreakerRead)
	fmt.Println(f.Breakers()[0].State, f.Breakers()[0].LastCause)
	// Output:
	// unavailable: true
	// read open
	// write closed
	// closed reset by ops
}
