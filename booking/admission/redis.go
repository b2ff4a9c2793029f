package admission

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStore keeps the line in Redis so several instances share it:
//
//	{prefix}persons  hash   person key → arrival seq
//	{prefix}line     zset   person key scored by arrival seq (a drawn batch
//	                        takes its own seqs in shuffled order)
//	{prefix}pend     zset   person keys waiting for a draw, scored by seq
//	{prefix}state    hash   seq, cursor, removed, last, credit, lastdrawn, drawseq
//	{prefix}admits   list   "ms:cursor" marks, one per second of admission
//	{prefix}drawing  string held while a draw moves pend into line
//
// The absolute rank of a member is removed + ZRANK; the cursor counts the
// ranks admitted. Every step is one Lua script (atomic); a draw moves the
// batch in MULTI chunks while "drawing" stops admission.
type redisStore struct {
	rdb    redis.UniversalClient
	prefix string
	keys   struct{ persons, line, pend, state, admits, drawing string }
}

// NewRedisStore returns a store that keeps the line in Redis under prefix
// (default "yeyak:admission:"). On Redis Cluster, give the prefix a hash
// tag, e.g. "yeyak:admission:{line}:", so every key lives in one slot.
func NewRedisStore(rdb redis.UniversalClient, prefix string) Store {
	if prefix == "" {
		prefix = "yeyak:admission:"
	}
	s := &redisStore{rdb: rdb, prefix: prefix}
	s.keys.persons = prefix + "persons"
	s.keys.line = prefix + "line"
	s.keys.pend = prefix + "pend"
	s.keys.state = prefix + "state"
	s.keys.admits = prefix + "admits"
	s.keys.drawing = prefix + "drawing"
	return s
}

// luaPlace is shared by join and place: KEYS persons, line, pend, state.
const luaPlace = `
local function place(m, seq)
  local cursor = tonumber(redis.call('HGET', KEYS[4], 'cursor') or '0')
  local removed = tonumber(redis.call('HGET', KEYS[4], 'removed') or '0')
  local r = redis.call('ZRANK', KEYS[2], m)
  if r then
    local abs = removed + r
    if abs < cursor then return {seq, 3, 0, 0} end
    return {seq, 2, abs - cursor, 0}
  end
  if redis.call('ZSCORE', KEYS[3], m) then
    local total = removed + redis.call('ZCARD', KEYS[2])
    return {seq, 1, total - cursor, redis.call('ZCARD', KEYS[3])}
  end
  return {seq, 0, 0, 0}
end
`

var joinScript = redis.NewScript(luaPlace + `
local s = redis.call('HGET', KEYS[1], ARGV[1])
if s then
  local p = place(ARGV[1], tonumber(s))
  p[5] = 0
  return p
end
s = redis.call('HINCRBY', KEYS[4], 'seq', 1)
redis.call('HSET', KEYS[1], ARGV[1], s)
local d = tonumber(ARGV[2])
local lastdrawn = tonumber(redis.call('HGET', KEYS[4], 'lastdrawn') or '0')
if d > 0 and d > lastdrawn then
  redis.call('ZADD', KEYS[3], s, ARGV[1])
else
  redis.call('ZADD', KEYS[2], s, ARGV[1])
end
local p = place(ARGV[1], s)
p[5] = 1
return p
`)

var placeScript = redis.NewScript(luaPlace + `
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s then return {0, 0, 0, 0} end
return place(ARGV[1], tonumber(s))
`)

// drawStartScript: KEYS state, drawing; ARGV opening ms, token, ttl ms.
// Closes the draw at the opening (later joins are ranked directly) and takes
// the drawing lock; returns the highest seq of the batch, or -1 when another
// instance holds the lock.
var drawStartScript = redis.NewScript(`
local ld = tonumber(redis.call('HGET', KEYS[1], 'lastdrawn') or '0')
if tonumber(ARGV[1]) > ld then
  redis.call('HSET', KEYS[1], 'lastdrawn', ARGV[1], 'drawseq', redis.call('HGET', KEYS[1], 'seq') or '0')
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return -1 end
return tonumber(redis.call('HGET', KEYS[1], 'drawseq') or '0')
`)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// advanceScript: KEYS state, line, persons, admits, drawing, pend; ARGV now
// ms, rate, burst, forget-before ms. Returns admitted, waiting, pending,
// cursor, stuck (a draw left unfinished by a crashed instance).
var advanceScript = redis.NewScript(`
local st = KEYS[1]
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', st, 'last') or '0')
local credit = tonumber(redis.call('HGET', st, 'credit') or '0')
local cursor = tonumber(redis.call('HGET', st, 'cursor') or '0')
local removed = tonumber(redis.call('HGET', st, 'removed') or '0')
if last > 0 and now > last then credit = credit + (now - last) / 1000 * rate end
if now > last then last = now end
local idle = redis.call('HGET', st, 'idle') == '1'
if idle and credit > burst then credit = burst end
local total = removed + redis.call('ZCARD', KEYS[2])
local drawing = redis.call('EXISTS', KEYS[5]) == 1
local n = 0
if not drawing then
  n = math.min(math.floor(credit), total - cursor)
  if n < 0 then n = 0 end
  credit = credit - n
  cursor = cursor + n
  if n > 0 then
    local mark = redis.call('LINDEX', KEYS[4], -1)
    local t = mark and tonumber(string.match(mark, '^(%d+):'))
    if t and now - t < 1000 then
      redis.call('LSET', KEYS[4], -1, string.format('%d:%d', t, cursor))
    else
      redis.call('RPUSH', KEYS[4], string.format('%d:%d', now, cursor))
    end
  end
end
local upto = removed
while true do
  local mark = redis.call('LINDEX', KEYS[4], 0)
  if not mark then break end
  local t, c = string.match(mark, '^(%d+):(%d+)$')
  if tonumber(t) >= forget then break end
  upto = tonumber(c)
  redis.call('LPOP', KEYS[4])
end
if upto > removed then
  local k = upto - removed
  local members = redis.call('ZRANGE', KEYS[2], 0, k - 1)
  for i = 1, #members, 1000 do
    redis.call('HDEL', KEYS[3], unpack(members, i, math.min(i + 999, #members)))
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, k - 1)
  removed = upto
end
idle = (total - cursor) == 0
if idle and credit > burst then credit = burst end
redis.call('HSET', st, 'idle', idle and '1' or '0', 'last', string.format('%d', last), 'credit', string.format('%.6f', credit),
  'cursor', string.format('%d', cursor), 'removed', string.format('%d', removed))
local stuck = 0
local drawseq = redis.call('HGET', st, 'drawseq')
if drawseq and not drawing and redis.call('ZCOUNT', KEYS[6], '-inf', drawseq) > 0 then stuck = 1 end
return {n, total - cursor, redis.call('ZCARD', KEYS[6]), cursor, stuck}
`)

func (s *redisStore) placeKeys() []string {
	return []string{s.keys.persons, s.keys.line, s.keys.pend, s.keys.state}
}

func toPlace(v []any) (Place, error) {
	if len(v) < 4 {
		return Place{}, fmt.Errorf("admission: redis place: unexpected reply %v", v)
	}
	n := make([]int64, len(v))
	for i, x := range v {
		y, ok := x.(int64)
		if !ok {
			return Place{}, fmt.Errorf("admission: redis place: unexpected reply %v", v)
		}
		n[i] = y
	}
	return Place{Seq: uint64(n[0]), State: State(n[1]), Ahead: n[2], Pending: n[3]}, nil
}

// Join implements Store.
func (s *redisStore) Join(ctx context.Context, key PersonKey, drawAt time.Time) (Place, bool, error) {
	var d int64
	if !drawAt.IsZero() {
		d = drawAt.UnixMilli()
	}
	v, err := joinScript.Run(ctx, s.rdb, s.placeKeys(), string(key[:]), d).Slice()
	if err != nil {
		return Place{}, false, fmt.Errorf("redis join: %w", err)
	}
	p, err := toPlace(v)
	return p, err == nil && len(v) > 4 && v[4] == int64(1), err
}

// Place implements Store.
func (s *redisStore) Place(ctx context.Context, key PersonKey) (Place, error) {
	v, err := placeScript.Run(ctx, s.rdb, s.placeKeys(), string(key[:])).Slice()
	if err != nil {
		return Place{}, fmt.Errorf("redis place: %w", err)
	}
	return toPlace(v)
}

// drawLockTTL bounds how long a crashed instance can stop admission.
const drawLockTTL = time.Minute

// drawChunk is how many members one MULTI moves from pend to line.
const drawChunk = 5000

// Draw implements Store.
func (s *redisStore) Draw(ctx context.Context, opening time.Time, shuffle func(n int, swap func(i, j int))) error {
	token := strconv.FormatInt(rand.Int64(), 36)
	seq, err := drawStartScript.Run(ctx, s.rdb, []string{s.keys.state, s.keys.drawing},
		opening.UnixMilli(), token, drawLockTTL.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("redis draw start: %w", err)
	}
	if seq < 0 {
		return nil // another instance is drawing; admission waits for it
	}
	defer unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.drawing}, token)
	return s.drain(ctx, seq, shuffle)
}

// drain moves every pending member with seq ≤ upTo into the line, in the
// order shuffle gives, each taking one of the batch's seqs as its score.
func (s *redisStore) drain(ctx context.Context, upTo int64, shuffle func(n int, swap func(i, j int))) error {
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: s.keys.pend, Start: "-inf", Stop: strconv.FormatInt(upTo, 10), ByScore: true,
	}).Result()
	if err != nil {
		return fmt.Errorf("redis draw read: %w", err)
	}
	members := make([]string, len(zs))
	for i, z := range zs {
		members[i] = z.Member.(string)
	}
	shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	for lo := 0; lo < len(members); lo += drawChunk {
		hi := min(lo+drawChunk, len(members))
		add := make([]redis.Z, 0, hi-lo)
		rem := make([]any, 0, hi-lo)
		for i := lo; i < hi; i++ {
			add = append(add, redis.Z{Score: zs[i].Score, Member: members[i]}) // scores ascending, members shuffled
			rem = append(rem, members[i])
		}
		if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAdd(ctx, s.keys.line, add...)
			p.ZRem(ctx, s.keys.pend, rem...)
			return nil
		}); err != nil {
			return fmt.Errorf("redis draw move: %w", err)
		}
	}
	return nil
}

// Advance implements Store.
func (s *redisStore) Advance(ctx context.Context, st Step) (int64, Stats, error) {
	keys := []string{s.keys.state, s.keys.line, s.keys.persons, s.keys.admits, s.keys.drawing, s.keys.pend}
	v, err := advanceScript.Run(ctx, s.rdb, keys, st.Now.UnixMilli(), st.Rate, st.Burst, st.ForgetBefore.UnixMilli()).Int64Slice()
	if err != nil {
		return 0, Stats{}, fmt.Errorf("redis advance: %w", err)
	}
	if len(v) != 5 {
		return 0, Stats{}, errors.New("admission: redis advance: unexpected reply")
	}
	if v[4] == 1 {
		// A draw was left unfinished (its instance died): finish it with a
		// fresh unpredictable shuffle. Admission resumes on the next step.
		if err := s.recoverDraw(ctx); err != nil {
			return 0, Stats{}, err
		}
	}
	return v[0], Stats{Waiting: v[1], Pending: v[2], Admitted: v[3]}, nil
}

func (s *redisStore) recoverDraw(ctx context.Context) error {
	token := strconv.FormatInt(rand.Int64(), 36)
	seq, err := drawStartScript.Run(ctx, s.rdb, []string{s.keys.state, s.keys.drawing}, 0, token, drawLockTTL.Milliseconds()).Int64()
	if err != nil || seq < 0 {
		return err
	}
	defer unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.drawing}, token)
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return s.drain(ctx, seq, rand.New(rand.NewChaCha8(seed)).Shuffle)
}
