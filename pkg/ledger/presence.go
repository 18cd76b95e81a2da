package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Presence is a registry of the running workers and of the robots each
// one serves, an optional capability of a ledger that [Memory] and [Redis]
// implement. Safe for concurrent use.
//
// Its cost does not grow with the fleet in steady state: a worker
// announces itself (its id and the digest of its robot set), and a robot
// set is stored once per digest, written only when no live copy exists,
// and read once per digest by every other worker, which keeps it in
// memory. A worker announcing the same set again costs two Redis round
// trips, whatever the number of robots.
type Presence interface {
	// Announce records a's worker as running, serving a.Robots, for a.TTL
	// from now (by the store's clock). Announcing again replaces the
	// worker's previous announcement.
	Announce(ctx context.Context, a Announcement) error
	// Members returns the workers whose announcement has not expired,
	// with their robot sets.
	Members(ctx context.Context) (*Members, error)
}

// Announcement is what a worker tells a [Presence] about itself.
type Announcement struct {
	// Worker identifies the announcing process; it must be unique per
	// process (a restarted process announces under a new id).
	Worker string
	// Robots are the robots configured on the worker, in any order.
	Robots []string
	// Unserved are the robots of Robots the worker cannot serve, with why
	// (a server or account limit reached); at most [MaxUnserved] are kept,
	// with the count of the rest.
	Unserved map[string]string
	// Leaving is set by a worker that drains: it takes no new work (others
	// take over its share at once) but still counts as serving its robots
	// until its announcement expires, so they are not taken for removed
	// while it restarts.
	Leaving bool
	// TTL is how long the announcement lasts; it must exceed the interval
	// between two announcements (workers use three intervals).
	TTL time.Duration
}

// MaxUnserved bounds the unserved robots an announcement carries by name.
const MaxUnserved = 100

// Member is one live worker, as read by [Presence.Members].
type Member struct {
	Worker string
	// Digest identifies the worker's robot set ([Digest]); Robots is its
	// size.
	Digest string
	Robots int
	// Leaving: the worker drains (see [Announcement.Leaving]).
	Leaving bool
	// Unserved are the robots the worker cannot serve, with why;
	// MoreUnserved counts those left out beyond [MaxUnserved].
	Unserved     map[string]string
	MoreUnserved int
}

// Members is a view of the live workers at one moment. Its methods answer
// from memory. The zero value has no worker.
type Members struct {
	// Workers, sorted by id.
	Workers []Member
	sets    map[string]robotSet // by digest
}

type robotSet map[string]struct{}

// Serves reports whether worker is in the view and serves robot.
func (m *Members) Serves(worker, robot string) bool {
	for _, w := range m.Workers {
		if w.Worker == worker {
			_, ok := m.sets[w.Digest][robot]
			return ok
		}
	}
	return false
}

// Served reports whether some live worker (leaving or not) has robot in
// its configuration.
func (m *Members) Served(robot string) bool {
	for _, w := range m.Workers {
		if _, ok := m.sets[w.Digest][robot]; ok {
			return true
		}
	}
	return false
}

// ServedBy returns the ids of the live workers, leaving ones excluded,
// that serve robot, sorted.
func (m *Members) ServedBy(robot string) []string {
	var out []string
	for _, w := range m.Workers {
		if _, ok := m.sets[w.Digest][robot]; ok && !w.Leaving {
			out = append(out, w.Worker)
		}
	}
	return out
}

// Unserved returns, for a robot that some worker cannot serve, that
// worker and why; ok is false when no worker reported it.
func (m *Members) Unserved(robot string) (worker, why string, ok bool) {
	for _, w := range m.Workers {
		if why, ok := w.Unserved[robot]; ok {
			return w.Worker, why, true
		}
	}
	return "", "", false
}

// Key identifies the membership that decides ownership: the workers that
// are not leaving, with their robot sets. It changes exactly when a worker
// joins, leaves or changes its robots.
func (m *Members) Key() string {
	var b strings.Builder
	for _, w := range m.Workers {
		if !w.Leaving {
			b.WriteString(w.Worker + "=" + w.Digest + ";")
		}
	}
	return b.String()
}

// Digest identifies a robot set: the same names in any order give the same
// digest.
func Digest(robots []string) string {
	d, _ := digestOf(robots)
	return d
}

// digestOf returns robots' digest and the number of distinct names. Names
// already sorted (as workers keep them) are not copied.
func digestOf(robots []string) (string, int) {
	sorted := robots
	if !slices.IsSorted(sorted) {
		sorted = slices.Clone(robots)
		slices.Sort(sorted)
	}
	h := sha256.New()
	n := 0
	for i, r := range sorted {
		if i > 0 && r == sorted[i-1] {
			continue
		}
		n++
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), n
}

// capUnserved keeps at most MaxUnserved names (the first, sorted) and
// counts the rest.
func capUnserved(u map[string]string) (map[string]string, int) {
	if len(u) <= MaxUnserved {
		return maps.Clone(u), 0
	}
	names := slices.Sorted(maps.Keys(u))
	out := make(map[string]string, MaxUnserved)
	for _, n := range names[:MaxUnserved] {
		out[n] = u[n]
	}
	return out, len(u) - MaxUnserved
}

// memMember is one announcement held by [Memory].
type memMember struct {
	m     Member
	set   robotSet
	until time.Time
}

// Announce implements [Presence].
func (l *Memory) Announce(_ context.Context, a Announcement) error {
	if a.Worker == "" || a.TTL <= 0 {
		return fmt.Errorf("ledger: announce needs a worker and a positive TTL")
	}
	set := uniq(a.Robots)
	u, more := capUnserved(a.Unserved)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.members[a.Worker] = memMember{
		m:   Member{Worker: a.Worker, Digest: Digest(a.Robots), Robots: len(set), Leaving: a.Leaving, Unserved: u, MoreUnserved: more},
		set: set, until: l.now().Add(a.TTL),
	}
	return nil
}

// Members implements [Presence].
func (l *Memory) Members(context.Context) (*Members, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := &Members{sets: map[string]robotSet{}}
	for id, mm := range l.members {
		if !now.Before(mm.until) {
			delete(l.members, id)
			continue
		}
		out.Workers = append(out.Workers, mm.m)
		out.sets[mm.m.Digest] = mm.set
	}
	slices.SortFunc(out.Workers, func(a, b Member) int { return strings.Compare(a.Worker, b.Worker) })
	return out, nil
}

// setCache keeps the robot sets a [Redis] presence has read or written, by
// digest. A digest names its content, so an entry never goes stale; the
// sets no live worker announces are dropped.
type setCache struct {
	mu sync.Mutex
	m  map[string]robotSet
	// written is the digest this process stored last.
	written string
}

// Presence keys, all under "<prefix>:presence:":
//
//   - "{workers}": a hash, one field per live worker ("w:<id>" →
//     "<until ms> <digest> <robots> <leaving 0/1>", Redis clock) and one
//     for its unserved robots ("u:<id>" → JSON), pruned when expired.
//   - "set:{<digest>}": a set of the robot names of that digest, plus the
//     empty name as a marker (so an empty set exists too), expiring
//     setTTLFactor × the TTL after the last announcement using it. It is
//     written under "set:{<digest>}:new:<worker>" in chunks and renamed
//     into place (same slot), so nobody reads half a set.
func (l *Redis) workersKey() string { return l.prefix + ":presence:{workers}" }

func (l *Redis) setKey(digest string) string { return l.prefix + ":presence:set:{" + digest + "}" }

// setTTLFactor makes a robot set outlive every announcement naming it.
const setTTLFactor = 2

// setChunk is the number of robot names written or read per command.
const setChunk = 1000

// announceScript records one worker in the registry and prunes expired
// ones.
//
// KEYS[1]: the workers hash. ARGV: worker id, "<digest> <robots>
// <leaving>", ttl ms, unserved JSON ("" for none). Returns the number of
// live workers.
var announceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'w:' .. ARGV[1], string.format('%.0f', now + ttl) .. ' ' .. ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'u:' .. ARGV[1], ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'u:' .. ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
local live = 0
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 'w:' then
    local untl = tonumber(string.match(all[i + 1], '^(%d+)'))
    if untl <= now then
      redis.call('HDEL', KEYS[1], f, 'u:' .. string.sub(f, 3))
    else
      live = live + 1
    end
  end
end
if redis.call('PTTL', KEYS[1]) < ttl * 2 then
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
return live
`)

// membersScript reads the registry. KEYS[1]: the workers hash. Returns
// {now ms, HGETALL}.
var membersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('HGETALL', KEYS[1])}
`)

// Announce implements [Presence]: it stores the robot set when no copy of
// its digest exists (or refreshes its TTL, one command), then records the
// worker (one script).
func (l *Redis) Announce(ctx context.Context, a Announcement) error {
	if a.Worker == "" || a.TTL <= 0 {
		return fmt.Errorf("ledger: announce needs a worker and a positive TTL")
	}
	digest, n := digestOf(a.Robots)
	setTTL := setTTLFactor * a.TTL
	ok, err := l.rdb.PExpire(ctx, l.setKey(digest), setTTL).Result()
	if err != nil {
		return fmt.Errorf("%w: announce %s: %w", ErrUnavailable, a.Worker, err)
	}
	if !ok {
		if err := l.writeSet(ctx, a.Worker, digest, a.Robots, setTTL); err != nil {
			return err
		}
	}
	var unserved string
	if len(a.Unserved) > 0 {
		u, more := capUnserved(a.Unserved)
		b, err := json.Marshal(unservedJSON{Robots: u, More: more})
		if err != nil {
			return fmt.Errorf("ledger: announce %s: %w", a.Worker, err)
		}
		unserved = string(b)
	}
	leaving := "0"
	if a.Leaving {
		leaving = "1"
	}
	val := digest + " " + strconv.Itoa(n) + " " + leaving
	if err := announceScript.Run(ctx, l.rdb, []string{l.workersKey()}, a.Worker, val, a.TTL.Milliseconds(), unserved).Err(); err != nil {
		return fmt.Errorf("%w: announce %s: %w", ErrUnavailable, a.Worker, err)
	}
	return nil
}

func uniq(robots []string) robotSet {
	s := make(robotSet, len(robots))
	for _, r := range robots {
		s[r] = struct{}{}
	}
	return s
}

type unservedJSON struct {
	Robots map[string]string `json:"robots"`
	More   int               `json:"more,omitempty"`
}

// writeSet stores robots under digest: chunks into a key of this worker's,
// renamed into place.
func (l *Redis) writeSet(ctx context.Context, worker, digest string, robots []string, ttl time.Duration) error {
	set := uniq(robots)
	names := slices.Sorted(maps.Keys(set))
	tmp := l.setKey(digest) + ":new:" + worker
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, tmp)
		p.SAdd(ctx, tmp, "") // the marker: an empty set exists too
		for i := 0; i < len(names); i += setChunk {
			chunk := names[i:min(i+setChunk, len(names))]
			members := make([]any, len(chunk))
			for j, n := range chunk {
				members[j] = n
			}
			p.SAdd(ctx, tmp, members...)
		}
		p.PExpire(ctx, tmp, ttl)
		p.Rename(ctx, tmp, l.setKey(digest))
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: store robot set %s of %d robots: %w", ErrUnavailable, digest, len(names), err)
	}
	l.sets.mu.Lock()
	defer l.sets.mu.Unlock()
	if l.sets.m == nil {
		l.sets.m = map[string]robotSet{}
	}
	l.sets.m[digest] = set
	l.sets.written = digest
	return nil
}

// ErrSetMissing is matched by [Redis.Members] when a live worker's robot
// set cannot be read (it expired: its workers announce too rarely for
// their TTL).
var ErrSetMissing = errors.New("ledger: robot set of a live worker is missing")

// Members implements [Presence]: one script, plus a scan of each robot
// set not read before.
func (l *Redis) Members(ctx context.Context) (*Members, error) {
	res, err := membersScript.Run(ctx, l.rdb, []string{l.workersKey()}).Slice()
	if err != nil {
		return nil, fmt.Errorf("%w: presence: %w", ErrUnavailable, err)
	}
	now, _ := res[0].(int64)
	all, _ := res[1].([]any)
	fields := make(map[string]string, len(all)/2)
	for i := 0; i+1 < len(all); i += 2 {
		k, _ := all[i].(string)
		v, _ := all[i+1].(string)
		fields[k] = v
	}
	out := &Members{sets: map[string]robotSet{}}
	for f, v := range fields {
		id, ok := strings.CutPrefix(f, "w:")
		if !ok {
			continue
		}
		var until int64
		var m Member
		var leaving int
		if _, err := fmt.Sscanf(v, "%d %s %d %d", &until, &m.Digest, &m.Robots, &leaving); err != nil || until <= now {
			continue
		}
		m.Worker, m.Leaving = id, leaving == 1
		if u := fields["u:"+id]; u != "" {
			var uj unservedJSON
			if json.Unmarshal([]byte(u), &uj) == nil {
				m.Unserved, m.MoreUnserved = uj.Robots, uj.More
			}
		}
		out.Workers = append(out.Workers, m)
	}
	slices.SortFunc(out.Workers, func(a, b Member) int { return strings.Compare(a.Worker, b.Worker) })
	for _, m := range out.Workers {
		if _, ok := out.sets[m.Digest]; ok {
			continue
		}
		s, err := l.loadSet(ctx, m.Digest)
		if err != nil {
			return nil, err
		}
		out.sets[m.Digest] = s
	}
	// Forget the sets nobody announces any more.
	l.sets.mu.Lock()
	for d := range l.sets.m {
		if _, ok := out.sets[d]; !ok && d != l.sets.written {
			delete(l.sets.m, d)
		}
	}
	l.sets.mu.Unlock()
	return out, nil
}

// loadSet returns digest's robot set, from the cache or read in chunks.
func (l *Redis) loadSet(ctx context.Context, digest string) (robotSet, error) {
	l.sets.mu.Lock()
	s, ok := l.sets.m[digest]
	l.sets.mu.Unlock()
	if ok {
		return s, nil
	}
	s = robotSet{}
	marker := false
	var cursor uint64
	for {
		names, next, err := l.rdb.SScan(ctx, l.setKey(digest), cursor, "", setChunk).Result()
		if err != nil {
			return nil, fmt.Errorf("%w: read robot set %s: %w", ErrUnavailable, digest, err)
		}
		for _, n := range names {
			if n == "" {
				marker = true
				continue
			}
			s[n] = struct{}{}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if !marker {
		return nil, fmt.Errorf("%w: %s", ErrSetMissing, digest)
	}
	l.sets.mu.Lock()
	defer l.sets.mu.Unlock()
	if l.sets.m == nil {
		l.sets.m = map[string]robotSet{}
	}
	l.sets.m[digest] = s
	return s, nil
}
