package load

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
)

// campaignInfo is what the load needs of GET /v1/campaigns.
type campaignInfo struct {
	ID       string `json:"id"`
	Products []struct {
		ID string `json:"id"`
	} `json:"products"`
	Rotation *struct {
		Starts booking.Date `json:"starts"`
		Days   int          `json:"days"`
		Digits []int        `json:"digits"`
	} `json:"rotation"`
	Vaccination struct {
		From booking.Date `json:"from"`
		To   booking.Date `json:"to"`
	} `json:"vaccination"`
	TimeZone string `json:"time_zone"`
}

// digitOn returns the rotation digit of day, or -1 when day is not a
// rotation day (everyone in the cohort may book, or nobody).
func (c *campaignInfo) digitOn(day booking.Date) int {
	if c.Rotation == nil {
		return -1
	}
	k := day.Sub(c.Rotation.Starts)
	if k < 0 || k >= c.Rotation.Days || k >= len(c.Rotation.Digits) {
		return -1
	}
	return c.Rotation.Digits[k]
}

// today returns today's date in the campaign's time zone.
func (c *campaignInfo) today(now time.Time) booking.Date {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil || c.TimeZone == "" {
		loc = time.UTC
	}
	return booking.DateOf(now.In(loc))
}

// Person classes.
const (
	classToday = iota // born on a day ending in today's digit (or no rotation today)
	classOther        // any other digit: should be refused on a rotation day
)

// picker hands out people of the population, each at most once: a
// full-cycle permutation of the indexes (start + k·step mod n, step
// coprime to n), walked by one cursor per class.
type picker struct {
	pop         population.Config
	n           int
	start, step int
	digit       int // -1: no rotation today, everyone is classToday
	explicit    []int
	filter      func(population.Person) bool

	mu     sync.Mutex
	cursor [2]int
	done   [2]bool
}

var errNoPeople = errors.New("load: the population has no more people of that kind")

func newPicker(pop population.Config, seed uint64, digit int, explicit []int, skip int, filter func(population.Person) bool) *picker {
	n := pop.Size()
	r := rand.New(rand.NewPCG(seed, seed^0x6c6f6164))
	p := &picker{pop: pop, n: n, digit: digit, explicit: explicit, filter: filter}
	if n > 1 {
		p.start = r.IntN(n)
		p.step = 1 + r.IntN(n-1)
		for gcd(p.step, n) != 1 {
			p.step = p.step%(n-1) + 1
		}
	} else {
		p.step = 1
	}
	if digit < 0 {
		p.done[classOther] = true // nobody is refused by rotation today
	}
	for c := range p.cursor {
		for range skip {
			if _, err := p.nextLocked(c); err != nil {
				break
			}
		}
	}
	return p
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (p *picker) classOf(x population.Person) int {
	if p.digit < 0 || x.Digit() == p.digit {
		return classToday
	}
	return classOther
}

// next returns the next person of class c (falling back to the other
// class when c is exhausted, or has nobody because today has no rotation).
func (p *picker) next(c int) (population.Person, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.explicit != nil {
		i := p.cursor[0]
		if i >= len(p.explicit) {
			return population.Person{}, errNoPeople
		}
		p.cursor[0]++
		return population.PersonAt(p.pop, p.explicit[i]), nil
	}
	x, err := p.nextLocked(c)
	if err != nil {
		x, err = p.nextLocked(1 - c)
	}
	return x, err
}

func (p *picker) nextLocked(c int) (population.Person, error) {
	if p.explicit != nil {
		return population.Person{}, errNoPeople
	}
	for !p.done[c] {
		k := p.cursor[c]
		if k >= p.n {
			p.done[c] = true
			break
		}
		p.cursor[c]++
		idx := int((int64(p.start) + int64(k)*int64(p.step)) % int64(p.n))
		x := population.PersonAt(p.pop, idx)
		if p.classOf(x) == c && (p.filter == nil || p.filter(x)) {
			return x, nil
		}
	}
	return population.Person{}, errNoPeople
}
