package cache

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// SliceRoster is an in-memory Roster over a fixed list of person ids, for
// the demo (filled from mocks/population) and tests. It is safe for
// concurrent use: it never changes after NewSliceRoster.
type SliceRoster struct {
	byDigit [10][]string // sorted ascending
}

// NewSliceRoster groups ids by birthDigit(id) (0-9; other values are
// dropped) and sorts each group. ids is not retained.
func NewSliceRoster(ids []string, birthDigit func(id string) int) *SliceRoster {
	r := &SliceRoster{}
	for _, id := range ids {
		if d := birthDigit(id); d >= 0 && d <= 9 {
			r.byDigit[d] = append(r.byDigit[d], id)
		}
	}
	for d := range r.byDigit {
		slices.Sort(r.byDigit[d])
		r.byDigit[d] = slices.Compact(r.byDigit[d])
	}
	return r
}

// PeopleForDigit implements Roster.
func (r *SliceRoster) PeopleForDigit(ctx context.Context, digit int, after string, limit int) ([]string, error) {
	if digit < 0 || digit > 9 {
		return nil, fmt.Errorf("cache: digit %d is not 0-9", digit)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("cache: limit %d is not positive", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := r.byDigit[digit]
	i := 0
	if after != "" {
		i = sort.SearchStrings(g, after)
		if i < len(g) && g[i] == after {
			i++
		}
	}
	j := min(len(g), i+limit)
	return slices.Clone(g[i:j]), nil
}

// CountForDigit implements DigitCounter.
func (r *SliceRoster) CountForDigit(_ context.Context, digit int) (int, error) {
	if digit < 0 || digit > 9 {
		return 0, fmt.Errorf("cache: digit %d is not 0-9", digit)
	}
	return len(r.byDigit[digit]), nil
}
