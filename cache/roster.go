package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// SliceRoster is an in-memory Roster over a fixed list of person ids: the
// demo's (filled from mocks/population), the tests', and the production
// one read from a file (ReadRoster, OpenRosterFile) when the registry is
// reached through its gateway, which cannot list people. (Through the
// Oracle schema, adapter/oracle's Roster reads the person master itself.)
// It is safe for concurrent use: it never changes after it is built. It
// holds each id once (a string header and the id's bytes: about 64 MB for
// two million 11-character ids).
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

// OpenRosterFile reads a roster file (see ReadRoster).
func OpenRosterFile(path string) (*SliceRoster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cache: roster: %w", err)
	}
	defer f.Close()
	r, err := ReadRoster(f)
	if err != nil {
		return nil, fmt.Errorf("cache: roster %s: %w", path, err)
	}
	return r, nil
}

// ReadRoster reads a roster: one person per line, "person_id,birth_date",
// the date as YYYY-MM-DD or YYYYMMDD (as the registry's PERSON_MST export
// has it). Blank lines, lines starting with '#' and a first line naming the
// columns are skipped. The birth date gives the digit group (the last
// digit of the day of birth, booking.BirthDigit). Errors name the line
// number, never its content.
func ReadRoster(r io.Reader) (*SliceRoster, error) {
	var ids []string
	digits := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, birth, ok := strings.Cut(line, ",")
		id, birth = strings.TrimSpace(id), strings.TrimSpace(birth)
		if n == 1 && ok && !startsWithDigit(birth) {
			continue // header
		}
		if !ok || id == "" {
			return nil, fmt.Errorf("line %d: want person_id,birth_date", n)
		}
		d, err := parseBirth(birth)
		if err != nil {
			return nil, fmt.Errorf("line %d: birth date: %w", n, err)
		}
		ids = append(ids, id)
		digits[id] = booking.BirthDigit(d)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return NewSliceRoster(ids, func(id string) int { return digits[id] }), nil
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

func parseBirth(s string) (booking.Date, error) {
	layout := "2006-01-02"
	if len(s) == 8 {
		layout = "20060102"
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return booking.Date{}, errors.New("not YYYY-MM-DD or YYYYMMDD")
	}
	return booking.DateOf(t), nil
}
