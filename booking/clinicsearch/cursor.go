package clinicsearch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"

	"github.com/yeyak/yeyak/booking"
)

// cursor is a position in a query's result order: the last (distance, id)
// returned, with the query it belongs to.
type cursor struct {
	lat, lon, radius float64
	dist             float64
	id               string
}

const (
	cursorVersion = 1
	cursorHead    = 1 + 4*8 // version, lat, lon, radius, dist
	cursorTag     = 12      // truncated HMAC-SHA256
	maxCursorLen  = 400     // base64 characters; ids are short
)

// defaultCursorKey signs cursors when Config.CursorKey is nil. A cursor is
// a position, not a secret: the signature is there so an edited or
// truncated cursor is refused instead of silently resuming elsewhere.
var defaultCursorKey = []byte("yeyak clinicsearch cursor v1")

func cursorMAC(key, msg []byte) []byte {
	if key == nil {
		key = defaultCursorKey
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:cursorTag]
}

// encodeCursor returns c as base64url (no padding): the fields in binary,
// then a truncated HMAC of them.
func encodeCursor(key []byte, c cursor) string {
	b := make([]byte, 0, cursorHead+len(c.id)+cursorTag)
	b = append(b, cursorVersion)
	for _, f := range []float64{c.lat, c.lon, c.radius, c.dist} {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = append(b, c.id...)
	b = append(b, cursorMAC(key, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses q.Cursor and checks that it is intact and belongs to
// q (same point and radius). Every failure is EINVALID.
func decodeCursor(key []byte, q Query) (cursor, error) {
	bad := booking.Errorf(booking.EINVALID, "cursor is not valid for this query")
	if len(q.Cursor) > maxCursorLen {
		return cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil || len(b) <= cursorHead+cursorTag || b[0] != cursorVersion {
		return cursor{}, bad
	}
	body, tag := b[:len(b)-cursorTag], b[len(b)-cursorTag:]
	if !hmac.Equal(tag, cursorMAC(key, body)) {
		return cursor{}, bad
	}
	f := func(i int) float64 { return math.Float64frombits(binary.BigEndian.Uint64(body[1+8*i:])) }
	c := cursor{lat: f(0), lon: f(1), radius: f(2), dist: f(3), id: string(body[cursorHead:])}
	if c.lat != q.Lat || c.lon != q.Lon || c.radius != q.RadiusKm || !(c.dist >= 0 && c.dist <= c.radius) {
		return cursor{}, bad
	}
	return c, nil
}
