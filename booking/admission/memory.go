package admission

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// memoryStore is the in-process line, compact enough for millions of
// waiting people (see docs/admission.md for the measured bytes per person):
//
//   - persons maps the person key to the place: seq and rank as uint32
//     (24 bytes of key and value per map slot);
//   - line lists the person keys in rank order from the first place not
//     yet forgotten (16 bytes per person);
//   - pending lists the keys waiting for the next draw (16 bytes per person).
type memoryStore struct {
	mu        sync.Mutex
	persons   map[PersonKey]slot
	line      []PersonKey // line[i] has rank base+i
	base      uint32      // rank of line[0]
	cursor    uint32      // ranks below cursor are admitted
	seq       uint32      // last seq handed out
	pending   []PersonKey
	drawnUpTo time.Time // the latest draw done
	lastStep  time.Time
	credit    float64     // admissions owed, carried between steps
	idle      bool        // nobody was left waiting after the last step
	admits    []admitMark // cursor after admitting, per second, oldest first
	mapPeak   int         // largest len(persons) since the map was last rebuilt
}

// slot is a person's place: the arrival seq and the rank (pendingRank until
// the draw ranks it).
type slot struct {
	seq  uint32
	rank uint32
}

// admitMark records the cursor reached at a time, to forget admitted places
// ClaimWindow later.
type admitMark struct {
	at     time.Time
	cursor uint32
}

const pendingRank = math.MaxUint32

// errFull is returned when the in-process line has handed out 2^32-1 places.
var errFull = errors.New("admission: in-process line is full (2^32-1 arrivals)")

// NewMemoryStore returns the in-process store: one line per process.
func NewMemoryStore() Store {
	return &memoryStore{persons: make(map[PersonKey]slot)}
}

func (m *memoryStore) placeLocked(s slot) Place {
	p := Place{Seq: uint64(s.seq)}
	switch {
	case s.rank == pendingRank:
		p.State = StatePending
		p.Ahead = int64(m.base) + int64(len(m.line)) - int64(m.cursor)
		p.Pending = int64(len(m.pending))
	case s.rank < m.cursor:
		p.State = StateAdmitted
	default:
		p.State = StateWaiting
		p.Ahead = int64(s.rank) - int64(m.cursor)
	}
	return p
}

// Join implements Store.
func (m *memoryStore) Join(_ context.Context, key PersonKey, drawAt time.Time) (Place, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.persons[key]; ok {
		return m.placeLocked(s), false, nil
	}
	if m.seq == math.MaxUint32-1 || uint64(m.base)+uint64(len(m.line))+uint64(len(m.pending)) >= math.MaxUint32-1 {
		return Place{}, false, errFull
	}
	m.seq++
	s := slot{seq: m.seq}
	if !drawAt.IsZero() && drawAt.After(m.drawnUpTo) {
		s.rank = pendingRank
		m.pending = append(m.pending, key)
	} else {
		s.rank = m.base + uint32(len(m.line))
		m.line = append(m.line, key)
	}
	m.persons[key] = s
	m.mapPeak = max(m.mapPeak, len(m.persons))
	return m.placeLocked(s), true, nil
}

// Place implements Store.
func (m *memoryStore) Place(_ context.Context, key PersonKey) (Place, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.persons[key]
	if !ok {
		return Place{}, nil
	}
	return m.placeLocked(s), nil
}

// Draw implements Store.
func (m *memoryStore) Draw(_ context.Context, opening time.Time, shuffle func(n int, swap func(i, j int))) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !opening.After(m.drawnUpTo) {
		return nil
	}
	m.drawnUpTo = opening
	p := m.pending
	shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	for _, k := range p {
		s := m.persons[k]
		s.rank = m.base + uint32(len(m.line))
		m.persons[k] = s
		m.line = append(m.line, k)
	}
	m.pending = nil
	return nil
}

// Advance implements Store.
func (m *memoryStore) Advance(_ context.Context, st Step) (int64, Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.lastStep.IsZero() && st.Now.After(m.lastStep) {
		m.credit += st.Now.Sub(m.lastStep).Seconds() * st.Rate
	}
	if st.Now.After(m.lastStep) {
		m.lastStep = st.Now
	}
	if m.idle {
		// Nobody could be admitted since the last step: bank at most Burst.
		m.credit = min(m.credit, st.Burst)
	}
	end := m.base + uint32(len(m.line))
	waiting := int64(end - m.cursor)
	n := min(int64(m.credit), waiting)
	m.credit -= float64(n)
	m.idle = waiting == n
	if m.idle {
		m.credit = min(m.credit, st.Burst)
	}
	if n > 0 {
		m.cursor += uint32(n)
		if k := len(m.admits); k > 0 && st.Now.Sub(m.admits[k-1].at) < time.Second {
			m.admits[k-1].cursor = m.cursor
		} else {
			m.admits = append(m.admits, admitMark{at: st.Now, cursor: m.cursor})
		}
	}
	m.forgetLocked(st.ForgetBefore)
	return n, Stats{
		Waiting:  int64(m.base) + int64(len(m.line)) - int64(m.cursor),
		Pending:  int64(len(m.pending)),
		Admitted: int64(m.cursor),
	}, nil
}

// forgetLocked drops the places admitted before t.
func (m *memoryStore) forgetLocked(t time.Time) {
	upTo := m.base
	drop := 0
	for drop < len(m.admits) && m.admits[drop].at.Before(t) {
		upTo = m.admits[drop].cursor
		drop++
	}
	if drop == 0 {
		return
	}
	m.admits = append(m.admits[:0], m.admits[drop:]...)
	k := int(upTo - m.base)
	for _, key := range m.line[:k] {
		delete(m.persons, key)
	}
	clear(m.line[:k])
	m.line = m.line[k:]
	m.base = upTo
	// Go maps never shrink: rebuild once three quarters of the peak is gone.
	if m.mapPeak > 4096 && len(m.persons) < m.mapPeak/4 {
		fresh := make(map[PersonKey]slot, 2*len(m.persons))
		for k, v := range m.persons {
			fresh[k] = v
		}
		m.persons, m.mapPeak = fresh, len(fresh)
	}
	// Reallocate once the dead prefix dominates, so memory follows the line.
	if cap(m.line) > 1024 && len(m.line) < cap(m.line)/4 {
		m.line = append(make([]PersonKey, 0, 2*len(m.line)), m.line...)
	}
}
